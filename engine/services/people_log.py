"""The people's-conditions log (民情日志): what grid workers hear on their rounds, and the cases it becomes.

A grid worker records an entry for each household visited (grid, topic,
notes, an optional follow-up); `entry_to_case` turns an entry into a case in
one action, through the ordinary intake (channel `grid_worker`), and links
both ways: the entry names its case, and `list_entries(case_no=...)` finds the
entry of a case. `list_entries` filters by grid, worker, community, topic,
period and whether a case came of it; `count_entries` gives the counts per
grid, worker or period (day, week, month), with how many became cases.
"""
from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

from sqlalchemy import func, select

from engine import clock
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from engine.rules import access
from engine.rules.forms import text_input
from engine.services import cases
from engine.store.models import Case
from engine.store.procedure_models import PeopleLogEntry

GROUPS = ("grid", "worker", "day", "week", "month")


def _day(value, name, errors):
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        errors[name] = ["must be a date, YYYY-MM-DD"]
        return None



def entry_view(e: PeopleLogEntry, case_no: str | None = None) -> dict:
    return {"id": e.id, "grid": e.grid, "community": e.community_code, "worker": e.worker, "household": e.household,
            "topic": e.topic, "notes": e.notes, "follow_up": e.follow_up, "visited_on": e.visited_on.isoformat(),
            "recorded_at": e.recorded_at.isoformat(), "case_no": case_no}


def record_entry(rt, form: dict, actor: str | None = None, *, user=None) -> dict:
    form = form if isinstance(form, dict) else {}
    errors: dict = {}
    community = form.get("community")
    if user is not None:
        if "grid_worker" not in user.roles:
            raise Forbidden(f"{user.username} is no grid worker: the people's-conditions log is the grid workers'")
        community = access.require_intake(rt.tables, user, community)
        actor = user.username
    grid = text_input(form, "grid", errors, 50)
    placement = rt.tables.grids.place(grid) if grid else None
    if community is None and placement is not None:
        community = placement.community
    if community not in rt.tables.org.communities():
        errors["community"] = ["must be an active community (or a grid of grids.toml that names one)"]
    entry = PeopleLogEntry(
        grid=grid or "", community_code=community or "", worker=actor or "system",
        household=text_input(form, "household", errors, 200) or "", topic=text_input(form, "topic", errors, 50) or "",
        notes=text_input(form, "notes", errors, 5000) or "", follow_up=text_input(form, "follow_up", errors, 2000, False),
        visited_on=_day(form.get("visited_on"), "visited_on", errors) or clock.now().astimezone(rt.tz).date(),
        recorded_at=clock.now())
    if entry.visited_on > clock.now().astimezone(rt.tz).date():
        errors["visited_on"] = ["must not be in the future"]
    if errors:
        raise InvalidInput("the log entry has invalid fields", errors=errors)
    with rt.db.write() as session:
        session.add(entry)
        session.flush()
        return entry_view(entry)


def _filtered(stmt, rt, filters: dict):
    errors: dict = {}
    since, until = _day(filters.get("from"), "from", errors), _day(filters.get("to"), "to", errors)
    if errors:
        raise InvalidInput("bad filters", errors=errors)
    for key, column in (("grid", PeopleLogEntry.grid), ("worker", PeopleLogEntry.worker),
                        ("community", PeopleLogEntry.community_code), ("topic", PeopleLogEntry.topic)):
        if filters.get(key) is not None:
            stmt = stmt.where(column == filters[key])
    if since is not None:
        stmt = stmt.where(PeopleLogEntry.visited_on >= since)
    if until is not None:
        stmt = stmt.where(PeopleLogEntry.visited_on <= until)
    if filters.get("has_case") is not None:
        stmt = stmt.where(PeopleLogEntry.case_id.is_not(None) if filters["has_case"]
                          else PeopleLogEntry.case_id.is_(None))
    if filters.get("case_no") is not None:
        stmt = stmt.where(Case.case_no == filters["case_no"])
    return stmt


def list_entries(rt, filters: dict | None = None, limit: int = 50, offset: int = 0) -> dict:
    filters = filters or {}
    base = select(PeopleLogEntry, Case.case_no).outerjoin(Case, Case.id == PeopleLogEntry.case_id)
    with rt.db.read() as session:
        stmt = _filtered(base, rt, filters)
        total = session.scalar(select(func.count()).select_from(stmt.subquery()))
        rows = session.execute(stmt.order_by(PeopleLogEntry.visited_on.desc(), PeopleLogEntry.id.desc())
                               .limit(limit).offset(offset)).all()
        return {"total": total, "items": [entry_view(e, no) for e, no in rows]}


def _period(day: date, by: str) -> str:
    if by == "day":
        return day.isoformat()
    if by == "week":
        return (day - timedelta(days=day.weekday())).isoformat()
    return day.strftime("%Y-%m")


def count_entries(rt, by: str, filters: dict | None = None) -> list[dict]:
    """Entries and the cases they became, per grid, worker or period (day, week: its Monday, month)."""
    if by not in GROUPS:
        raise InvalidInput("unknown grouping", errors={"by": [f"must be one of: {', '.join(GROUPS)}"]})
    base = select(PeopleLogEntry.grid, PeopleLogEntry.worker, PeopleLogEntry.visited_on,
                  PeopleLogEntry.case_id).outerjoin(Case, Case.id == PeopleLogEntry.case_id)
    entries, turned = Counter(), Counter()
    with rt.db.read() as session:
        for grid, worker, day, case_id in session.execute(_filtered(base, rt, filters or {})):
            key = grid if by == "grid" else worker if by == "worker" else _period(day, by)
            entries[key] += 1
            turned[key] += case_id is not None
    return [{by: key, "entries": entries[key], "cases": turned[key]} for key in sorted(entries)]


def entry_to_case(rt, entry_id: int, form: dict | None = None, actor: str | None = None, *, user=None) -> dict:
    """Register the entry as a case (the intake's rules apply) and link the two; a second time is a conflict."""
    form = form if isinstance(form, dict) else {}
    with rt.db.read() as session:
        entry = session.get(PeopleLogEntry, entry_id) if isinstance(entry_id, int) else None
        if entry is None:
            raise NotFound(f"log entry {entry_id} does not exist")
        if entry.case_id is not None:
            raise Conflict(f"log entry {entry_id} became a case already")
        view = entry_view(entry)
    intake = {"title": form.get("title") or f"民情日志：{view['topic']}（{view['household']}）"[:200],
              "description": view["notes"] + (f"\n跟进：{view['follow_up']}" if view["follow_up"] else ""),
              "category": form.get("category"), "channel": "grid_worker", "reporter": form.get("reporter"),
              "location": {"address": form.get("address") or view["household"], "grid": view["grid"] or None},
              "community": view["community"]}
    case = cases.start_case(rt, intake, actor, user=user)
    with rt.db.write() as session:
        entry = session.scalar(select(PeopleLogEntry).where(PeopleLogEntry.id == entry_id).with_for_update())
        if entry.case_id is not None:
            raise Conflict(f"log entry {entry_id} became a case already")
        entry.case_id = session.scalar(select(Case.id).where(Case.case_no == case["case_no"]))
    return {"entry": dict(view, case_no=case["case_no"]), "case": case}


