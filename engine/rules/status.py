"""Lifecycles as enums, with their allowed transitions in one place.

A case's status is declared by the BPMN itself: each user task carries a
`status` property naming the status of the case while that task is open, so
the diagram, not Python branches, moves the case along. This module only
names the statuses the diagrams may use and the projection states of tasks.
"""
from __future__ import annotations

from enum import Enum


class CaseStatus(str, Enum):
    MEDIATING = "mediating"      # the community tries people's mediation
    SIGNING = "signing"          # routed, waiting for the unit to sign for it
    TRANSFERRING = "transferring"  # the unit refused it (退回): the routing desk re-routes it
    HANDLING = "handling"        # split-line handling in the responsible unit
    APPROVING = "approving"      # single-signature approval by the leader
    EVALUATING = "evaluating"    # the community and the citizen rate the reply
    REVIEWING = "reviewing"      # the supervision centre reviews and sends back
    DECIDING = "deciding"        # rework cap reached: the supervision centre rules
    ESCALATED = "escalated"      # on the coordination ladder
    ASSESSING = "assessing"      # a stability risk assessment (稳评) of a major decision is under way
    SCREENING = "screening"      # a periodic screening round (矛盾排查) is open
    CLOSED = "closed"


class TaskRowState(str, Enum):
    READY = "ready"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


TASK_TRANSITIONS = {
    TaskRowState.READY: {TaskRowState.COMPLETED, TaskRowState.CANCELLED},
    TaskRowState.COMPLETED: set(),
    TaskRowState.CANCELLED: set(),
}


def check_task_transition(old: str, new: str) -> None:
    if TaskRowState(new) not in TASK_TRANSITIONS[TaskRowState(old)]:
        raise ValueError(f"task cannot go from {old} to {new}")
