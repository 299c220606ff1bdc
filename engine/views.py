"""Plain-data views of cases, tasks and events: what the engine hands to entrypoints.

Nothing SpiffWorkflow-shaped leaves the engine; the API dumps these dicts
with its marshmallow schemas.
"""
from __future__ import annotations

from sqlalchemy import select

from engine.models import Case, CaseEvent, CaseTask
from engine.status import TaskRowState


def _iso(value):
    return value.isoformat() if value is not None else None


def task_view(row: CaseTask, definition=None, case: Case | None = None) -> dict:
    out = {
        "id": row.id,
        "case_no": case.case_no if case is not None else None,
        "element": row.bpmn_id,
        "name": row.name,
        "lane": row.lane,
        "role": row.role,
        "unit": row.unit_code,
        "state": row.state,
        "assignee": row.assignee,
        "created_at": _iso(row.created_at),
        "ended_at": _iso(row.ended_at),
        "ended_by": row.ended_by,
        "due_at": _iso(row.due_at),
        "warn_at": _iso(row.warn_at),
    }
    if definition is not None:
        meta = definition.tasks.get(row.bpmn_id)
        out["form"] = [f.describe() for f in meta.form] if meta else []
    return out


def case_view(session, case: Case, include_tasks: bool = False, open_rows: list | None = None) -> dict:
    out = {
        "case_no": case.case_no,
        "title": case.title,
        "description": case.description,
        "category": case.category,
        "channel": case.channel,
        "reporter": {"name": case.reporter_name, "phone": case.reporter_phone, "id_no": case.reporter_id_no},
        "location": {"address": case.address, "lat": case.lat, "lon": case.lon, "grid": case.grid},
        "community": case.community_code,
        "status": case.status,
        "level": case.level,
        "current_unit": case.current_unit,
        "routed_unit": case.routed_unit,
        "time_limit_class": case.time_limit_class,
        "reply": {"text": case.reply_text, "unit": case.reply_unit, "at": _iso(case.replied_at)}
        if case.reply_text else None,
        "rating": case.rating,
        "version": case.version,
        "created_at": _iso(case.created_at),
        "updated_at": _iso(case.updated_at),
        "closed_at": _iso(case.closed_at),
    }
    if include_tasks and open_rows is not None:
        out["open_tasks"] = [task_view(r, None, case) for r in open_rows]
    elif include_tasks:
        rows = session.scalars(select(CaseTask).where(CaseTask.case_id == case.id,
                                                      CaseTask.state == TaskRowState.READY.value)
                               .order_by(CaseTask.created_at, CaseTask.id))
        out["open_tasks"] = [task_view(r, None, case) for r in rows]
    return out


def event_view(e: CaseEvent) -> dict:
    return {
        "seq": e.seq, "type": e.type, "at": _iso(e.at), "actor": e.actor, "task_id": e.task_id,
        "element": e.element, "lane": e.lane, "payload": e.payload, "definition_version": e.definition_version,
    }
