"""Compaction of a workflow's task tree, so a case costs the same however old it is.

SpiffWorkflow keeps every task it ever ran as an ancestor of the live ones,
each with its own copy of the task data: every rework loop adds levels to the
tree, so loading, saving and scanning a case grow with its age, and past a
depth of about a thousand `get_tasks()` silently misses READY tasks. The
engine never looks above the live part of the tree (joins look at the
parents of their waiting inputs, boundary events at their own parent), and
the case's history is kept in the event log, not in the tree. So after each
operation the completed prefix is cut: the deepest COMPLETED task that is an
ancestor of every live task is re-attached directly under the root, and
everything outside root + that subtree is dropped. The cut is deterministic,
so a replay of the same events reaches the same state.
"""
from __future__ import annotations

from SpiffWorkflow import TaskState

FINISHED = TaskState.COMPLETED | TaskState.CANCELLED | TaskState.ERROR


def _chain(task) -> list:
    """The ancestors of `task`, root first (excluding the task itself)."""
    out = []
    node = task.parent
    while node is not None:
        out.append(node)
        node = node.parent
    out.reverse()
    return out


def compact_tree(workflow) -> int:
    """Cut the completed prefix of one workflow's tree; returns the number of tasks dropped."""
    root = workflow.task_tree
    live = [t for t in workflow.tasks.values() if not t.state & FINISHED and t is not root]
    if not live:
        return 0
    common = _chain(live[0])
    for task in live[1:]:
        ancestors = set(id(a) for a in _chain(task))
        keep = 0
        for i, node in enumerate(common):
            if id(node) not in ancestors:
                break
            keep = i + 1
        common = common[:keep]
    # The new top: the deepest completed common ancestor below the root's first child.
    anchor = None
    for node in reversed(common):
        if node.state == TaskState.COMPLETED:
            anchor = node
            break
    if anchor is None or anchor is root or anchor.parent is root:
        return 0
    keep_ids = {root.id}
    stack = [anchor]
    while stack:
        node = stack.pop()
        keep_ids.add(node.id)
        stack.extend(node.children)
    dropped = [tid for tid in workflow.tasks if tid not in keep_ids]
    for tid in dropped:
        del workflow.tasks[tid]
    root._children = [anchor.id]
    anchor._parent = root.id
    if workflow.last_task is not None and workflow.last_task.id not in keep_ids:
        workflow.last_task = anchor
    return len(dropped)


def compact(workflow) -> int:
    """Compact the top workflow and every running subprocess."""
    dropped = compact_tree(workflow)
    for sub in workflow.subprocesses.values():
        dropped += compact_tree(sub)
    # A subprocess whose calling task was cut away with a completed prefix is finished: drop it too.
    while True:
        known = set(workflow.tasks)
        for sub in workflow.subprocesses.values():
            known.update(sub.tasks)
        orphans = [sub_id for sub_id in workflow.subprocesses if sub_id not in known]
        if not orphans:
            return dropped
        for sub_id in orphans:
            del workflow.subprocesses[sub_id]
