"""What this instance is for, and the clock it may run on.

A database created by `flask demo` is marked `demo`, one prepared with
`flask training init` is marked `training` (the `purpose` row of
`instance_setting`); any other instance is production. Only a demo or
training instance may run on a sped-up clock (`--speed N`): production data
must never see time run fast, since every deadline, red light and
supervision record would come early.

The sped-up clock of a practice instance starts now, or at the latest instant
its data has already reached if that is later (after a fast run the cases
live in the clock's future: a restart never takes them back in time).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, inspect, select

from engine import clock
from engine.errors import Conflict, InvalidInput
from engine.runtime import database_health
from engine.store.models import Case, CaseEvent
from engine.store.settings_models import InstanceSetting

PURPOSE = "purpose"
PRACTICE = ("demo", "training")


def instance_purpose(rt) -> str:
    """`demo`, `training` or `production` (an instance nobody marked, or a schema older than the mark)."""
    if not inspect(rt.db.engine).has_table(InstanceSetting.__tablename__):
        return "production"
    with rt.db.read() as session:
        row = session.get(InstanceSetting, PURPOSE)
        return row.value if row is not None else "production"


def mark_instance(rt, purpose: str, actor: str) -> dict:
    """Mark the instance as a demo or training one; refused for an unmarked instance that already holds cases."""
    if purpose not in PRACTICE:
        raise InvalidInput(f"unknown purpose {purpose!r}", errors={"purpose": [f"must be one of: {', '.join(PRACTICE)}"]})
    with rt.db.write() as session:
        row = session.get(InstanceSetting, PURPOSE)
        if row is None:
            cases = session.scalar(select(func.count()).select_from(Case))
            if cases:
                raise Conflict(f"this instance holds {cases} case(s) and was not created for demo or training: "
                               "it is left as production (use a new database for a demo or training)")
            row = InstanceSetting(key=PURPOSE, value=purpose, set_at=clock.now(), set_by=actor)
            session.add(row)
            return {"purpose": purpose, "marked": True}
        if row.value == purpose:
            return {"purpose": purpose, "marked": False}
        if row.value not in PRACTICE:
            raise Conflict(f"this instance is marked {row.value!r}, not for demo or training")
        row.value, row.set_at, row.set_by = purpose, clock.now(), actor
        return {"purpose": purpose, "marked": True}


def practice_clock(rt, speed: float) -> clock.ScaledClock:
    """The clock of a demo or training instance at `speed`; refused (Conflict) on any other instance."""
    if speed != 1:
        purpose = instance_purpose(rt)
        if purpose not in PRACTICE:
            raise Conflict(f"--speed is only for an instance created for demo or training; this one is {purpose} "
                           "(create one with `flask demo` or `flask training init` on a new database)")
    return clock.ScaledClock(speed, start=resume_instant(rt))


def resume_instant(rt) -> datetime:
    """Now, or the latest instant the instance's data has reached if that is later."""
    now = clock.Clock().now()
    with rt.db.read() as session:
        latest = [session.scalar(select(func.max(CaseEvent.at))), session.scalar(select(func.max(Case.updated_at)))]
    latest = [t for t in latest if t is not None]
    return max([now, *latest])


def health(rt) -> dict:
    """The health check (the database answers) and the instance's time, speed and purpose."""
    current = clock.get_clock()
    return {**database_health(rt), "clock": current.now().astimezone(rt.tz).isoformat(),
            "clock_speed": current.speed, "purpose": instance_purpose(rt)}
