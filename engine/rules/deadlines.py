"""Deadlines of steps, offered to BPMN timer expressions, and the traffic light of a task.

The light (red past due, yellow past the warning point, green before) is
decided here once, in Python for views and in SQL for lists and filters.

`due_at('mediation_body', kind)` is a mediation body's own limit ([mediation_bodies]).
`due_at(step, limit_class=None)` and `warn_at(step, limit_class=None)` read the
one table of time limits (`processes/time_limits.toml`) and count working days
on the working calendar from the clock's "now": the diagram says *which* limit
applies (`due_at('handling', time_limit_class)`), the table says *how long*.
They return ISO-8601 instants with an offset, as SpiffWorkflow's timeDate wants.
"""
from __future__ import annotations

from datetime import datetime
from enum import Enum

from sqlalchemy import and_, or_

from engine import clock
from engine.errors import InvalidInput
from engine.store.models import CaseTask


class Light(str, Enum):
    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


def light(due: datetime | None, warn: datetime | None, now: datetime) -> Light | None:
    if due is None:
        return None
    if now >= due:
        return Light.RED
    if warn is not None and now >= warn:
        return Light.YELLOW
    return Light.GREEN


def light_clause(light: str, now):
    """The same rule as `light`, as SQL over case_task rows (task lists filter on it)."""
    red = and_(CaseTask.due_at.is_not(None), CaseTask.due_at <= now)
    yellow = and_(~red, CaseTask.warn_at.is_not(None), CaseTask.warn_at <= now)
    if light == "red":
        return red
    if light == "yellow":
        return and_(CaseTask.due_at.is_not(None), yellow)
    if light == "green":
        return and_(CaseTask.due_at.is_not(None), ~red, or_(CaseTask.warn_at.is_(None), CaseTask.warn_at > now))
    raise InvalidInput(f"unknown light {light!r}", errors={"light": ["must be one of: green, yellow, red"]})


def step_days(time_limits: dict, step: str, limit_class: str | None = None) -> int:
    """Working days allowed for a step (ValueError naming the step when the table lacks it)."""
    if step == "handling":
        table = time_limits["handling"]
        if limit_class not in table:
            raise ValueError(f"no handling limit for time-limit class {limit_class!r}")
        return table[limit_class]
    if step == "mediation_body":  # the mediation body's own limit, by its unit kind
        table = time_limits.get("mediation_bodies", {})
        if limit_class not in table:
            raise ValueError(f"no time limit for mediation bodies of kind {limit_class!r} in time_limits.toml")
        return table[limit_class]
    for section in ("steps", "escalation"):
        if step in time_limits[section]:
            return time_limits[section][step]
    raise ValueError(f"no time limit for step {step!r} in time_limits.toml")


def deadline_functions(calendar, time_limits: dict) -> dict:
    warn_days = time_limits["warning"]["days_before_due"]

    def due(step: str, limit_class: str | None = None):
        return calendar.add_working_days(clock.now(), step_days(time_limits, step, limit_class))

    def due_at(step: str, limit_class: str | None = None) -> str:
        return due(step, limit_class).iso()

    def warn_at(step: str, limit_class: str | None = None) -> str:
        # A warning point already passed (a short limit begun after office hours) stays the
        # instant it is: its timer fires at once, live and in replay alike. Clamping it to
        # "now" made it fire only because the live clock moves on, which a replay's does not.
        return calendar.subtract_working_days(due(step, limit_class).at, warn_days).iso()

    return {"due_at": due_at, "warn_at": warn_at}
