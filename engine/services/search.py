"""The case list: filtered, paginated, and only what the caller may see.

Filters: status, category, unit (the accepting community, the routed unit or
the unit holding the case now), level, overdue (an open task past its due
instant), a created-at and a reported-at range, and free text over the case number, title,
description and address (never the reporter's data, which would let a
search probe masked fields). Newest first.

Every list of the API pages through `paginate`: a page is LIMIT/OFFSET on an
order an index gives, and the total is exact up to COUNT_CAP rows, an estimate
past it (the page says so: `total_estimated`).
"""
from __future__ import annotations

import os
from datetime import datetime, timezone

from sqlalchemy import func, literal_column, or_, select, text

from engine import clock
from engine.errors import InvalidInput
from engine.rules import access
from engine.services.views import case_summary, open_rows_by_case
from engine.store.models import Case, CaseUnit

MAX_PER_PAGE = 100
# Lists count their rows up to this many; past it the total is an estimate (`total_estimated`).
COUNT_CAP = int(os.environ.get("LIST_COUNT_CAP", "10000"))


def aware(value: datetime | None, tz, field: str) -> datetime | None:
    """An instant in UTC; a naive datetime is read in the application's time zone."""
    if value is None:
        return None
    try:
        if value.tzinfo is None:
            value = value.replace(tzinfo=tz)
        return value.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        raise InvalidInput("a date is out of range", errors={field: ["is out of range"]}) from None


def page_args(filters: dict) -> tuple[int, int]:
    """(page, per_page) from the filters, within bounds; page numbers start at 1."""
    return max(int(filters.get("page") or 1), 1), min(max(int(filters.get("per_page") or 20), 1), MAX_PER_PAGE)


class Total(int):
    """A list's total; `estimated` when more rows matched than COUNT_CAP (then it is the planner's estimate)."""

    estimated = False


def paginate(session, stmt, page: int, per_page: int, counted=None) -> tuple[Total, list]:
    """(total, the rows of one page) for a select; `counted`, when given, is a cheaper select of as many
    rows as `stmt` has, counted instead of it.

    The rows are counted up to COUNT_CAP only: a count of a million rows would cost
    more than the page. Past the cap the total is PostgreSQL's estimate of the rows
    the query matches (never below the cap), marked `estimated`; SQLite, which has
    no estimate, gives the cap.
    """
    # Count a constant, not the rows' columns: an index that answers the WHERE clause answers the count.
    counted = stmt if counted is None else counted
    ones = counted.order_by(None).with_only_columns(literal_column("1"), maintain_column_froms=True)
    number = session.scalar(select(func.count()).select_from(ones.limit(COUNT_CAP + 1).subquery()))
    if number > COUNT_CAP:
        total = Total(max(COUNT_CAP, _estimate(session, counted)))
        total.estimated = True
    else:
        total = Total(number)
    rows = session.execute(stmt.offset((page - 1) * per_page).limit(per_page)).all()
    return total, rows


def _estimate(session, stmt) -> int:
    if session.bind.dialect.name != "postgresql":
        return 0
    compiled = stmt.order_by(None).compile(session.bind, compile_kwargs={"literal_binds": True})
    plan = session.execute(text(f"EXPLAIN (FORMAT JSON) {compiled}")).scalar()
    return int(plan[0]["Plan"]["Plan Rows"])


def page_view(items: list, total: int, page: int, per_page: int) -> dict:
    return {"items": items, "total": int(total), "total_estimated": bool(getattr(total, "estimated", False)),
            "page": page, "per_page": per_page}


def overdue_clause(now: datetime):
    """A case is overdue when one of its open steps is red (engine.rules.deadlines.light), i.e. when the
    earliest deadline of its open steps (`Case.open_due_at`, kept by the engine) has passed: one indexed
    range, where an EXISTS over the task rows made PostgreSQL walk the whole case history in creation order
    whenever fewer than a page of cases were late (2.2 s at 1,000,000 cases)."""
    return Case.open_due_at <= now


def not_overdue_clause(now: datetime):
    """Its negation: no open step has a deadline, or none has passed (a closed case has none)."""
    return or_(Case.open_due_at.is_(None), Case.open_due_at > now)


def list_cases(rt, user, filters: dict) -> dict:
    """The cases in the caller's scope that match the filters, one page of them, newest first.

    A unit's own list without filters (a department's or a community's default view) is read off
    the scope index (`case_unit`: unit, created_at, case id) in order, and counted there: the
    general shape (the cases, newest first, each checked against the scope) walks the whole
    history backwards to find a page of a unit that took part in few cases, and counts through
    the case table (45 ms for a department at 1,000,000 cases; `bench/list_bench.py`).
    """
    now = clock.now()
    stmt = select(Case)
    for key, column in (("status", Case.status), ("category", Case.category), ("level", Case.level)):
        if filters.get(key):
            stmt = stmt.where(column == filters[key])
    if filters.get("unit"):
        unit = filters["unit"]
        stmt = stmt.where(or_(Case.community_code == unit, Case.routed_unit == unit, Case.current_unit == unit))
    if filters.get("overdue") is not None:
        stmt = stmt.where(overdue_clause(now) if filters["overdue"] else not_overdue_clause(now))
    for prefix, column in (("created", Case.created_at), ("reported", Case.reported_at)):
        start = aware(filters.get(f"{prefix}_from"), rt.tz, f"{prefix}_from")
        end = aware(filters.get(f"{prefix}_to"), rt.tz, f"{prefix}_to")
        if start is not None:
            stmt = stmt.where(column >= start)
        if end is not None:
            stmt = stmt.where(column < end)
    if filters.get("q"):
        q = filters["q"]
        stmt = stmt.where(or_(Case.case_no.icontains(q, autoescape=True), Case.title.icontains(q, autoescape=True),
                              Case.description.icontains(q, autoescape=True),
                              Case.address.icontains(q, autoescape=True)))
    unit = access.scope_unit(rt.tables, user)
    counted = None
    if unit is not None and stmt.whereclause is None:
        took_part = CaseUnit.unit_code == unit  # (case, unit) is the key: one row per case
        stmt = (stmt.join(CaseUnit, (CaseUnit.case_id == Case.id) & took_part)
                .order_by(CaseUnit.created_at.desc(), CaseUnit.case_id.desc()))  # the case's created_at
        counted = select(CaseUnit.case_id).where(took_part)
    else:
        scope = access.scope_clause(rt.tables, user)
        if scope is not None:
            stmt = stmt.where(scope)
        stmt = stmt.order_by(Case.created_at.desc(), Case.id.desc())
    page, per_page = page_args(filters)
    with rt.db.read() as session:
        total, rows = paginate(session, stmt, page, per_page, counted)
        open_rows = open_rows_by_case(session, [case.id for case, in rows])
        items = [case_summary(case, open_rows[case.id], masked=not access.sees_personal_data(user, case))
                 for case, in rows]
    return page_view(items, total, page, per_page)
