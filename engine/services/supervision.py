"""Supervision services (督办): the supervision centre's view of every late step.

A record is opened by the `red_light` handler when a step passes its deadline;
supervisors list the open ones, add notes, and close a record once the late
step is done (completed or cancelled), never before.
"""
from __future__ import annotations

from sqlalchemy import select

from engine import clock
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from engine.rules.status import TaskRowState
from engine.services.search import page_args, page_view, paginate
from engine.store.models import Case, CaseTask
from engine.store.timer_models import Supervision


def supervision_view(record: Supervision, case_no: str, calendar, now, step_state: str | None) -> dict:
    late_days = calendar.working_days_between(record.due_at, now) if record.due_at else None
    return {
        "id": record.id, "case_no": case_no, "step": record.step, "step_name": record.step_name,
        "unit": record.unit_code, "due_at": record.due_at.isoformat() if record.due_at else None,
        "opened_at": record.opened_at.isoformat(), "status": record.status, "note": record.note,
        "late_working_days": late_days,
        "late_hours": round((now - record.due_at).total_seconds() / 3600, 1) if record.due_at else None,
        "step_state": step_state,
        "closed_at": record.closed_at.isoformat() if record.closed_at else None, "closed_by": record.closed_by,
    }


READERS = frozenset({"supervisor", "auditor"})
WRITERS = frozenset({"supervisor"})


def _require(user, roles: frozenset, what: str) -> None:
    if user is not None and not user.roles & roles:
        raise Forbidden(f"only a {' or '.join(sorted(roles))} may {what}")


def list_supervisions(rt, user=None, filters: dict | None = None) -> dict:
    """Supervision records, most overdue first: open ones unless `status` says otherwise."""
    _require(user, READERS, "see supervision records")
    filters = filters or {}
    records = []  # conditions on the records alone
    status = filters.get("status") or "open"
    if status != "all":
        records.append(Supervision.status == status)
    if filters.get("unit"):
        records.append(Supervision.unit_code == filters["unit"])
    stmt = (select(Supervision).join(Case, Case.id == Supervision.case_id)
            .outerjoin(CaseTask, CaseTask.id == Supervision.task_id).add_columns(Case.case_no, CaseTask.state)
            .where(*records))
    # A record has one case and at most one task: unless a filter reads the case, the records alone are
    # counted (off their queue index), not the joins (67,500 at 1,000,000 cases: counted to the cap in 3 ms).
    counted = select(Supervision.id).where(*records)
    if filters.get("case"):
        stmt, counted = stmt.where(Case.case_no == filters["case"]), None
    stmt = stmt.order_by(Supervision.due_at, Supervision.id)
    page, per_page = page_args(filters)
    now = clock.now()
    with rt.db.read() as session:
        total, rows = paginate(session, stmt, page, per_page, counted)
        items = [supervision_view(r[0], r.case_no, rt.calendar, now, r.state) for r in rows]
    return page_view(items, total, page, per_page)


def _locked(session, record_id: int):
    row = session.execute(select(Supervision).where(Supervision.id == record_id)
                          .with_for_update(of=Supervision)
                          .join(Case, Case.id == Supervision.case_id)
                          .outerjoin(CaseTask, CaseTask.id == Supervision.task_id)
                          .add_columns(Case.case_no, CaseTask.state)).first()
    if row is None:
        raise NotFound(f"supervision record {record_id} does not exist")
    return row


def note_supervision(rt, user, record_id: int, note: str) -> dict:
    _require(user, WRITERS, "annotate supervision records")
    actor = user.username
    if not isinstance(note, str) or not note.strip():
        raise InvalidInput("a note is required", errors={"note": ["must not be empty"]})
    now = clock.now()
    with rt.db.write() as session:
        row = _locked(session, record_id)
        record = row[0]
        stamp = f"[{now.astimezone(rt.tz).strftime('%Y-%m-%d %H:%M')} {actor}] {note.strip()}"
        record.note = f"{record.note}\n{stamp}" if record.note else stamp
        return supervision_view(record, row.case_no, rt.calendar, now, row.state)


def close_supervision(rt, user, record_id: int, note: str | None = None) -> dict:
    _require(user, WRITERS, "close supervision records")
    actor = user.username
    now = clock.now()
    with rt.db.write() as session:
        row = _locked(session, record_id)
        record = row[0]
        if record.status == "closed":
            raise Conflict(f"supervision record {record_id} is already closed")
        if row.state == TaskRowState.READY.value:
            raise Conflict(f"the late step {record.step} of case {row.case_no} is not done yet; "
                           "a record can be closed only once the step is done")
        if note:
            stamp = f"[{now.astimezone(rt.tz).strftime('%Y-%m-%d %H:%M')} {actor}] {note.strip()}"
            record.note = f"{record.note}\n{stamp}" if record.note else stamp
        record.status, record.closed_at, record.closed_by = "closed", now, actor
        return supervision_view(record, row.case_no, rt.calendar, now, row.state)
