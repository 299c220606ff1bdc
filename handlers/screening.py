"""Periodic screening (矛盾排查): the service tasks of processes/screening.bpmn.

`open_screening_round` runs each time a level's cycle timer fires: on a
working day, for a period with no round yet (engine.rules.screening), it
claims the period in the database (`screening_period`, unique per level and
period) and gives each unit of the level a screening task due in the level's
working days; otherwise it opens nothing (an empty round completes at once).
`record_screening_finding` keeps what a unit found: nothing new, a new case
(its number) or an update on a known risk.
"""
from __future__ import annotations

FINDINGS = ("nothing_new", "new_case", "risk_update")


def open_screening_round(ctx, params: dict, data: dict) -> dict:
    level = data.get("screening_level")
    schedule = ctx.tables.screening
    data.update(round_units=[], round_results=[], round_id=None, round_period=None)
    if level not in schedule.levels:
        return {"opened": False, "reason": f"no screening level {level!r} in screening.toml"}
    today = ctx.now.astimezone(ctx.calendar.tz).date()
    if not ctx.calendar.is_working_day(today):
        return {"opened": False, "reason": "not a working day", "day": today.isoformat()}
    start = schedule.period_start(level, today)
    units = schedule.units(level, ctx.tables.org)
    round_id = ctx.claim_screening_period(level, start, units)
    if round_id is None:
        return {"opened": False, "reason": "this period has its round", "period": start.isoformat()}
    due = ctx.calendar.add_working_days(ctx.now, schedule.levels[level].deadline_days).iso()
    data.update(round_units=units, round_id=round_id, round_period=start.isoformat(), round_due=due)
    return {"opened": True, "round_id": round_id, "period": start.isoformat(), "units": units, "due_at": due}


def record_screening_finding(ctx, params: dict, data: dict) -> dict:
    result = {"unit": data.get("screening_unit"), "round_id": data.get("round_id"), "finding": data.get("finding"),
              "note": data.get("finding_note"), "case_no": data.get("finding_case_no")}
    data["screening_result"] = result
    return result
