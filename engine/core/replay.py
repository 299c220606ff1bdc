"""Replay: rebuild a case's workflow from its definition version and its events alone.

A `Replayer` starts a fresh workflow on the given spec and applies the
recorded operations one by one, in memory, never writing anything: a start
seeds the recorded initial data, a completion submits the recorded form, a
timer operation fires the timers due at the recorded instant. Each operation
runs with the clock set, for this thread only, to the event's instant, so
timer expressions (`due_at(...)`) compute what they computed then. Service
tasks do not run their handlers: the recorded `service_called` events give
the result and the data the handler wrote. After each operation the tree is
compacted exactly as the live operation compacted it, and the workflow's
state digest is compared with the recorded one (strict mode); in trace mode
(a migration's dry run on another version) only what the events say is
checked: the same tasks became ready, were cancelled, fired and completed.

Task ids are random, so the replay maps recorded task ids to its own tasks
through the `task_ready` events; claims only move the holder of a task, and
notes (an incident opened or resolved) change nothing.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from SpiffWorkflow import TaskState
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException

from engine import clock
from engine.core.compaction import compact
from engine.core.operation import RECORDED, CaseScriptEngine
from engine.core.sandbox import SandboxEnvironment
from engine.core.timers import pending_timers, timer_due
from engine.store.ledger import state_digest

CLAIMS = ("task_claimed", "task_unclaimed", "task_delegated")
# Notes on the case that never touch its workflow (engine.services.incidents): nothing to replay.
NOTES = ("incident_opened", "incident_resolved")
MIGRATED = "case_migrated"


class Diverged(Exception):
    """The replay could not follow the record: at which event, and what differs."""

    def __init__(self, seq: int | None, reason: str):
        super().__init__(f"event {seq}: {reason}")
        self.seq = seq
        self.reason = reason


def operations(events: list) -> list[list]:
    """The events grouped into the operations (units of work) that wrote them."""
    out: list[list] = []
    for e in events:
        if out and e.op_seq is not None and out[-1][0].op_seq == e.op_seq:
            out[-1].append(e)
        else:
            out.append([e])
    return out


@dataclass
class Replayer:
    functions: dict
    spec: object
    subprocess_specs: dict
    strict: bool = True
    ids: dict = field(default_factory=dict)        # recorded task id -> replayed task
    holders: dict = field(default_factory=dict)    # recorded task id -> who holds it
    path: list = field(default_factory=list)       # element ids passed through, in order
    fired: list = field(default_factory=list)      # the deadlines that ran

    def __post_init__(self):
        self.workflow = BpmnWorkflow(self.spec, self.subprocess_specs)
        self.engine = CaseScriptEngine(SandboxEnvironment(self.functions, self._call_service))
        self.workflow.script_engine = self.engine
        self._calls: list = []

    # -- the workflow --------------------------------------------------------------------

    def all_tasks(self):
        yield from self.workflow.tasks.values()
        for sub in self.workflow.subprocesses.values():
            yield from sub.tasks.values()

    def digest(self) -> bytes:
        return state_digest(self.workflow)

    def open_tasks(self) -> list[dict]:
        recorded = {task.id: rid for rid, task in self.ids.items()}
        out = []
        for t in self.all_tasks():
            if t.state == TaskState.READY and t.task_spec.manual:
                rid = recorded.get(t.id)
                out.append({"task_id": rid, "element": t.task_spec.bpmn_id,
                            "name": t.task_spec.bpmn_name or t.task_spec.bpmn_id, "lane": t.task_spec.lane,
                            "assignee": self.holders.get(rid)})
        return out

    def waiting_timers(self) -> list[dict]:
        return [{"element": t.element, "kind": t.kind, "due_at": t.due_at.isoformat()}
                for t in sorted(pending_timers(self.workflow), key=lambda t: (t.due_at, t.element))]

    # -- applying the record -------------------------------------------------------------

    def apply(self, op: list) -> bytes | None:
        """Apply one recorded operation; the state digest after it (None for a claim)."""
        first = op[0]
        if first.type in CLAIMS:
            self._claim(first)
            return None
        if first.type in NOTES:
            return None
        at = first.at
        fired = [e for e in op if e.type == "timer_fired"]
        for e in fired:  # a live timer operation reads the clock a moment after its recorded instant
            at = max(at, datetime.fromisoformat(e.payload["due_at"]))
        self._calls = [e for e in op if e.type == "service_called"]
        before = {t.id: t.state for t in self.all_tasks() if t.state & RECORDED}
        with clock.thread_clock(clock.ManualClock(at)):
            try:
                self._act(first)
            except SpiffWorkflowException as exc:
                cause = exc
                while cause is not None and not isinstance(cause, Diverged):
                    cause = cause.__cause__ or getattr(cause, "exception", None)
                if isinstance(cause, Diverged):
                    cause.seq = cause.seq or first.seq
                    raise cause from None
                raise Diverged(first.seq, f"the engine stopped: {exc}") from None
            except Diverged as exc:
                exc.seq = exc.seq or first.seq
                raise
            except Exception as exc:  # a record the engine cannot follow is a divergence, not a crash
                raise Diverged(first.seq, f"the replay failed: {exc.__class__.__name__}: {exc}") from None
        if self._calls:
            raise Diverged(self._calls[0].seq, f"handler {self._calls[0].payload.get('handler')} was not called")
        self._check(op, before)
        compact(self.workflow)
        return self.digest()

    def _act(self, first) -> None:
        payload = first.payload or {}
        if first.type == "case_started":
            for task in self.workflow.get_tasks(state=TaskState.READY):
                task.data.update(payload.get("data") or {})
        elif first.type == "task_completed":
            task = self.ids.get(first.task_id)
            if task is None or task.state != TaskState.READY or not task.task_spec.manual:
                raise Diverged(first.seq, f"task {first.element} ({first.task_id}) is not a ready user task")
            task.data.update(payload.get("data") or {})
            task.run()
        elif first.type in ("timer_fired", "service_called"):
            self.workflow.refresh_timers()
        else:
            raise Diverged(first.seq, f"an operation cannot start with a {first.type} event")
        self.workflow.do_engine_steps()

    def _call_service(self, operation_name, operation_params, data):
        if not self._calls:
            raise Diverged(None, f"handler {operation_name} would run, but the record has no such call")
        event = self._calls.pop(0)
        if event.payload.get("handler") != operation_name:
            raise Diverged(event.seq, f"handler {operation_name} ran where {event.payload.get('handler')} "
                                      "was recorded")
        data.update(event.payload.get("data") or {})
        return json.dumps(event.payload.get("result"), ensure_ascii=False)

    def _claim(self, e) -> None:
        if e.task_id not in self.ids:
            raise Diverged(e.seq, f"{e.type} of task {e.task_id}, which never became ready")
        if e.type == "task_claimed":
            self.holders[e.task_id] = (e.payload or {}).get("assignee", e.actor)
        elif e.type == "task_unclaimed":
            self.holders.pop(e.task_id, None)
        else:
            self.holders[e.task_id] = (e.payload or {}).get("to")

    def _check(self, op: list, before: dict) -> None:
        """What the events of the operation say happened must be what happened in the replay."""
        # In the order they changed: a sub-workflow's tasks complete before the call activity around them.
        changed = sorted((t for t in self.all_tasks() if t.id in before or t.state & RECORDED),
                         key=lambda t: t.last_state_change)
        ready, cancelled, timers = [], [], []
        for t in changed:
            old, new = before.get(t.id), t.state if t.state & RECORDED else None
            if old == new or new is None:
                continue
            if new == TaskState.COMPLETED and t.task_spec.bpmn_id:
                self.path.append(t.task_spec.bpmn_id)
            if not t.task_spec.manual:
                if old == TaskState.WAITING and new & (TaskState.READY | TaskState.COMPLETED) \
                        and timer_due(t) is not None:
                    timers.append(t)
            elif new == TaskState.READY:
                ready.append(t)
            elif new == TaskState.CANCELLED and old is not None:
                cancelled.append(t.task_spec.bpmn_id)
        last = op[-1].seq
        recorded_ready = [e for e in op if e.type == "task_ready"]
        if sorted(e.element for e in recorded_ready) != sorted(t.task_spec.bpmn_id for t in ready):
            raise Diverged(recorded_ready[0].seq if recorded_ready else last,
                           f"tasks that became ready: recorded {sorted(e.element for e in recorded_ready)}, "
                           f"replayed {sorted(t.task_spec.bpmn_id for t in ready)}")
        for e in recorded_ready:
            task = next(t for t in ready if t.task_spec.bpmn_id == e.element)
            ready.remove(task)
            self.ids[e.task_id] = task
        recorded = sorted(e.element for e in op if e.type == "task_cancelled")
        if recorded != sorted(cancelled):
            raise Diverged(last, f"tasks cancelled: recorded {recorded}, replayed {sorted(cancelled)}")
        recorded = sorted(e.element for e in op if e.type == "timer_fired")
        if recorded != sorted(t.task_spec.bpmn_id for t in timers):
            raise Diverged(last, f"timers fired: recorded {recorded}, "
                                 f"replayed {sorted(t.task_spec.bpmn_id for t in timers)}")
        self.fired.extend({"seq": e.seq, "element": e.element, **(e.payload or {})}
                          for e in op if e.type == "timer_fired")
        done = any(e.type == "case_completed" for e in op)
        if done != self.workflow.is_completed():
            raise Diverged(last, "the case was recorded as " + ("completed" if done else "still running")
                           + ", the replay " + ("completed it" if not done else "left it running"))

    def remap(self, task_ids: dict) -> None:
        """After a migration the open tasks carry new recorded ids."""
        for old, new in (task_ids or {}).items():
            if old in self.ids:
                self.ids[new] = self.ids.pop(old)
                if old in self.holders:
                    self.holders[new] = self.holders.pop(old)
