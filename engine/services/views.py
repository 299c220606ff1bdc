"""Plain-data views of cases, tasks and events: what the engine hands to entrypoints.

Nothing SpiffWorkflow-shaped leaves the engine; the API dumps these dicts
with its marshmallow schemas. `masked=True` hides the reporter's phone and
ID number (the rule of who may see them is in `engine.rules.access`); the public
tracking view carries no personal data at all.
"""
from __future__ import annotations

from sqlalchemy import select

from engine import clock
from engine.rules.deadlines import light
from engine.rules.status import TaskRowState
from engine.store.models import Case, CaseEvent, CaseTask


def _iso(value):
    return value.isoformat() if value is not None else None


def mask(value: str | None, head: int = 3, tail: int = 4) -> str | None:
    """138****5678: the first and last characters kept, every one between starred."""
    if not value:
        return value
    if len(value) <= head + tail:
        return "*" * max(len(value) - 2, 1) + value[-2:] if len(value) > 2 else "*" * len(value)
    return value[:head] + "*" * (len(value) - head - tail) + value[-tail:]


def reporter_view(name, phone, id_no, masked: bool) -> dict:
    if masked:
        phone, id_no = mask(phone), mask(id_no)
    return {"name": name, "phone": phone, "id_no": id_no}


def _light(row: CaseTask) -> str | None:
    if row.state != TaskRowState.READY.value:
        return None
    value = light(row.due_at, row.warn_at, clock.now())
    return value.value if value else None


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
        "light": _light(row),
        "deadline_estimated": bool(row.due_estimated),
    }
    if definition is not None:
        meta = definition.tasks.get(row.bpmn_id)
        out["form"] = [f.describe() for f in meta.form] if meta else []
    return out


def case_view(session, case: Case, include_tasks: bool = False, open_rows: list | None = None,
              masked: bool = False) -> dict:
    out = {
        "case_no": case.case_no,
        "title": case.title,
        "description": case.description,
        "category": case.category,
        "channel": case.channel,
        "reporter": reporter_view(case.reporter_name, case.reporter_phone, case.reporter_id_no, masked),
        "location": {"address": case.address, "lat": case.lat, "lon": case.lon, "grid": case.grid},
        "community": case.community_code,
        "status": case.status,
        "level": case.level,
        "current_unit": case.current_unit,
        "routed_unit": case.routed_unit,
        "first_handling_unit": case.first_handling_unit,
        "co_units": list(case.co_units or []),
        "transfers": case.transfers or 0,
        "time_limit_class": case.time_limit_class,
        "reply": {"text": case.reply_text, "unit": case.reply_unit, "at": _iso(case.replied_at)}
        if case.reply_text else None,
        "rating": case.rating,
        "version": case.version,
        "created_at": _iso(case.created_at),
        "reported_at": _iso(case.reported_at),
        "updated_at": _iso(case.updated_at),
        "closed_at": _iso(case.closed_at),
    }
    if include_tasks:
        if open_rows is None:
            open_rows = open_rows_by_case(session, [case.id]).get(case.id, [])
        out["open_tasks"] = [task_view(r, None, case) for r in open_rows]
        out.update(case_flags(open_rows))
    return out


def open_rows_by_case(session, case_ids) -> dict[int, list[CaseTask]]:
    """The open (READY) task rows of these cases, in creation order, in one query."""
    found: dict[int, list[CaseTask]] = {case_id: [] for case_id in case_ids}
    if found:
        rows = session.scalars(select(CaseTask).where(CaseTask.case_id.in_(found),
                                                      CaseTask.state == TaskRowState.READY.value)
                               .order_by(CaseTask.created_at, CaseTask.id))
        for row in rows:
            found[row.case_id].append(row)
    return found


def case_flags(open_rows: list[CaseTask]) -> dict:
    """A case's deadline flags, derived from its open tasks only (the one place they are decided).

    The case's clock is its most urgent open step's (`due_at`, `warn_at`,
    `light`); it is `overdue` when an open step is past due, which is when
    that most urgent one is. A case with no timed open step has no light and
    is not overdue.
    """
    timed = sorted((r for r in open_rows if r.state == TaskRowState.READY.value and r.due_at is not None),
                   key=lambda r: r.due_at)
    first = timed[0] if timed else None
    lit = _light(first) if first is not None else None
    return {"due_at": _iso(first.due_at) if first else None, "warn_at": _iso(first.warn_at) if first else None,
            "light": lit, "overdue": lit == "red",
            "deadline_estimated": bool(first.due_estimated) if first else False}


def case_summary(case: Case, open_rows: list[CaseTask], masked: bool = True) -> dict:
    """A case as lists and task pages show it: no description, the reporter as `masked` says,
    and the deadline flags of its open tasks (`case_flags`)."""
    return {
        "case_no": case.case_no, "title": case.title, "category": case.category, "channel": case.channel,
        "reporter": reporter_view(case.reporter_name, case.reporter_phone, case.reporter_id_no, masked),
        "community": case.community_code, "status": case.status, "level": case.level,
        "current_unit": case.current_unit, "routed_unit": case.routed_unit,
        "created_at": _iso(case.created_at), "reported_at": _iso(case.reported_at),
        "updated_at": _iso(case.updated_at), "closed_at": _iso(case.closed_at),
        **case_flags(open_rows),
    }


def _masked_payload(payload):
    # The intake recorded by case_started carries the reporter; nothing else in a payload is personal data.
    if isinstance(payload, dict) and isinstance(payload.get("intake"), dict) \
            and isinstance(payload["intake"].get("reporter"), dict):
        reporter = payload["intake"]["reporter"]
        masked = dict(reporter, phone=mask(reporter.get("phone")), id_no=mask(reporter.get("id_no")))
        return dict(payload, intake=dict(payload["intake"], reporter=masked))
    return payload


def event_view(e: CaseEvent, masked: bool = False) -> dict:
    return {
        "seq": e.seq, "type": e.type, "at": _iso(e.at), "actor": e.actor, "task_id": e.task_id,
        "element": e.element, "lane": e.lane, "payload": _masked_payload(e.payload) if masked else e.payload,
        "definition_version": e.definition_version,
    }


def unit_ref(tables, code: str | None) -> dict | None:
    if code is None:
        return None
    unit = tables.units.get(code)
    return {"code": code, "name": unit.name if unit else code}


def track_view(tables, case: Case) -> dict:
    """What a citizen may see of their case: where it is and when things happened, nothing personal."""
    route = tables.routes.get(case.category)
    return {
        "case_no": case.case_no, "status": case.status, "category": case.category,
        "category_name": route.name if route else case.category,
        "current_unit": unit_ref(tables, case.current_unit), "handling_unit": unit_ref(tables, case.routed_unit),
        "accepted_at": _iso(case.created_at), "updated_at": _iso(case.updated_at),
        "replied_at": _iso(case.replied_at), "closed_at": _iso(case.closed_at),
    }
