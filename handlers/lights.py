"""Red-light warning (红灯预警): what happens when a step's warning point or deadline passes.

`yellow_light` runs from a non-interrupting boundary timer at the warning
point: it notifies whoever holds the step and the unit's leader. `red_light`
runs at the deadline: it opens a supervision record (督办) for the
supervision centre and notifies the centre and the unit. Which step is late
is read from the boundary timer that led here, so one handler serves every
step of every diagram.
"""
from __future__ import annotations


def _step(trigger: dict) -> str:
    return trigger.get("step_name") or trigger.get("step") or "办理"


def yellow_light(ctx, params: dict, data: dict) -> dict:
    trigger = ctx.trigger()
    due = trigger.get("due_at")
    when = due.astimezone(ctx.calendar.tz).strftime("%m月%d日%H:%M") if due and hasattr(ctx.calendar, "tz") else ""
    params = {"case_no": ctx.case.case_no, "step": _step(trigger), "due": when or "时限"}
    sent = 0
    if trigger.get("assignee"):
        ctx.notify("user", trigger["assignee"], kind="yellow", params=params)
        sent += 1
    if trigger.get("unit"):
        ctx.notify("leader", trigger["unit"], kind="yellow", params=params)
        sent += 1
    return {"light": "yellow", "step": trigger.get("step"), "notified": sent}


def red_light(ctx, params: dict, data: dict) -> dict:
    trigger = ctx.trigger()
    record = ctx.open_supervision(trigger)
    case_no, step = ctx.case.case_no, _step(trigger)
    centre = ctx.supervision_centre()
    if centre:
        unit = ctx.tables.units.get(trigger.get("unit"))
        ctx.notify("unit", centre, kind="supervision",
                   params={"case_no": case_no, "step": step, "unit": unit.name if unit else (trigger.get("unit") or "")})
    if trigger.get("unit"):
        ctx.notify("leader", trigger["unit"], kind="red", params={"case_no": case_no, "step": step})
    return {"light": "red", "step": trigger.get("step"), "supervision_id": record}
