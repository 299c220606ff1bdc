"""Deadlines of steps, offered to BPMN timer expressions, and the traffic light of a task.

`due_at(step, limit_class=None)` and `warn_at(step, limit_class=None)` read the
one table of time limits (`processes/time_limits.toml`) and count working days
on the working calendar from the clock's "now": the diagram says *which* limit
applies (`due_at('handling', time_limit_class)`), the table says *how long*.
They return ISO-8601 instants with an offset, as SpiffWorkflow's timeDate wants.
"""
from __future__ import annotations

from datetime import datetime
from enum import Enum

from engine import clock
from engine.calendar import Deadline


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


def step_days(time_limits: dict, step: str, limit_class: str | None = None) -> int:
    """Working days allowed for a step (ValueError naming the step when the table lacks it)."""
    if step == "handling":
        table = time_limits["handling"]
        if limit_class not in table:
            raise ValueError(f"no handling limit for time-limit class {limit_class!r}")
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
        deadline = due(step, limit_class)
        warn = calendar.subtract_working_days(deadline.at, warn_days)
        now = clock.now()
        return (warn if warn.at > now else Deadline(now, warn.fallback, warn.tz)).iso()

    return {"due_at": due_at, "warn_at": warn_at}
