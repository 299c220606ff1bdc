"""Red-light warning (红灯预警): what happens when a step's warning point or deadline passes.

`yellow_light` runs from a non-interrupting boundary timer at the warning
point: it notifies whoever holds the step and the unit's leader. `red_light`
runs at the deadline: it opens a supervision record (督办) for the
supervision centre and notifies the centre and the unit. Which step is late
is read from the boundary timer that led here, so one handler serves every
step of every diagram.
"""
from __future__ import annotations


def _where(trigger: dict, case) -> str:
    return f"案件{case.case_no}「{trigger.get('step_name') or trigger.get('step') or '办理'}」"


def yellow_light(ctx, params: dict, data: dict) -> dict:
    trigger = ctx.trigger()
    due = trigger.get("due_at")
    when = due.astimezone(ctx.calendar.tz).strftime("%m月%d日%H:%M") if due and hasattr(ctx.calendar, "tz") else ""
    text = f"【黄灯预警】{_where(trigger, ctx.case)}即将到期{('（' + when + '）') if when else ''}，请抓紧办理。"
    sent = 0
    if trigger.get("assignee"):
        ctx.notify("user", trigger["assignee"], text)
        sent += 1
    if trigger.get("unit"):
        ctx.notify("leader", trigger["unit"], text)
        sent += 1
    return {"light": "yellow", "step": trigger.get("step"), "notified": sent}


def red_light(ctx, params: dict, data: dict) -> dict:
    trigger = ctx.trigger()
    record = ctx.open_supervision(trigger)
    text = f"【红灯督办】{_where(trigger, ctx.case)}已超过办理时限，监管中心已立案督办。"
    centre = ctx.supervision_centre()
    if centre:
        ctx.notify("unit", centre, text)
    if trigger.get("unit"):
        ctx.notify("leader", trigger["unit"], text)
    return {"light": "red", "step": trigger.get("step"), "supervision_id": record}
