"""Per-case statistics facts (`case_fact`): the parts of a case's history the figures read, kept compact.

The statistics (engine/services/statistics.py) observe every case *as of* a period's end: the
units it had touched by then, the highest level it had reached, the level whose step produced
its last reply, its ratings and its co-handling units. Read from the records, that is every
task row and every completed-task event of a month's cases, and the events' form payloads
decoded in Python — seconds at city scale. So each case also carries one `case_fact` row: a
timeline of exactly those facts, each stamped with the instant it happened (integer
microseconds since the epoch, so an as-of comparison is exact):

    {"tasks":   [[t, unit, lane], ...],     # every user task row, when it was created
     "replies": [[t, lane], ...],           # each unified reply, with the lane of the last
                                            #   task completed before it (its level is read at query time)
     "ratings": [[t, rating], ...],         # each evaluation's rating, in log order
     "co":      [[t, [unit, ...]], ...],    # co-handling units named (co_units_added)
     "last_lane": lane}                     # the lane of the last completed task so far

The engine appends to it in the same unit of work that writes the events and task rows
(`record_tasks` from CaseOperation.finish, `record_events` from ledger.append_events, which
every event passes), so it never runs ahead of or behind the log.
`rebuild` derives the same timeline from the records (task rows and the event log); the
statistics use it for a case that has no row (started before migration d_h11f), and a test
checks on a simulated quarter that the incremental rows equal the rebuilt ones.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, ForeignKey, select
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.base import Base
from engine.store.models import CaseEvent, CaseTask

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
REPLY_HANDLER = "unified_reply"
RATINGS = ("satisfied", "basically_satisfied", "dissatisfied", "not_implemented")
FACT_EVENTS = ("task_completed", "service_called", "co_units_added")


class CaseFact(Base):
    """One row per case: its statistics timeline (see the module docstring)."""

    __tablename__ = "case_fact"

    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id"), primary_key=True, autoincrement=False)
    timeline: Mapped[dict] = mapped_column(JSON)


def micros(instant: datetime) -> int:
    """An aware instant as integer microseconds since the epoch (exact, and ordered as the instants are)."""
    delta = instant - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def empty() -> dict:
    return {"tasks": [], "replies": [], "ratings": [], "co": [], "last_lane": None}


def extend(timeline: dict, tasks, events) -> dict:
    """A new timeline: `timeline` with these task rows (objects with created_at, unit_code, lane) and these
    events (dicts or rows with type, at, lane, payload, in log order) added."""
    out = {key: list(value) if isinstance(value, list) else value for key, value in timeline.items()}
    for t in tasks:
        out["tasks"].append([micros(t.created_at), t.unit_code, t.lane])
    for ev in events:
        get = ev.get if isinstance(ev, dict) else lambda k, _ev=ev: getattr(_ev, k)
        type_, payload = get("type"), get("payload") or {}
        if type_ == "task_completed":
            out["last_lane"] = get("lane")
            rating = (payload.get("data") or {}).get("rating") if isinstance(payload.get("data"), dict) else None
            if rating in RATINGS:
                out["ratings"].append([micros(get("at")), rating])
        elif type_ == "service_called" and payload.get("handler") == REPLY_HANDLER:
            out["replies"].append([micros(get("at")), out["last_lane"]])
        elif type_ == "co_units_added":
            units = [u for u in payload.get("units") or () if isinstance(u, str)]
            if units:
                out["co"].append([micros(get("at")), units])
    return out


def _row(session, case_id: int) -> CaseFact | None:
    return session.get(CaseFact, case_id)  # the identity map's, or one SELECT


def start(session, case_id: int) -> None:
    """A new case's (empty) timeline, in the unit of work that starts the case."""
    session.add(CaseFact(case_id=case_id, timeline=empty()))
    session.flush()  # the engine's sessions do not autoflush: `_row` must find it


def record_tasks(session, case_id: int, tasks) -> None:
    """Add new task rows to the case's timeline (CaseOperation.finish, with the rows themselves).

    A case started before the table existed has no row and gets none: the statistics rebuild its
    timeline from the records instead, which a partial row would silently contradict.
    """
    if tasks and (row := _row(session, case_id)) is not None:
        row.timeline = extend(row.timeline, tasks, ())


def record_events(session, case_id: int, events) -> None:
    """Add appended events to the case's timeline (ledger.append_events: every event passes there)."""
    events = [ev for ev in events if ev["type"] in FACT_EVENTS]
    if events and (row := _row(session, case_id)) is not None:
        row.timeline = extend(row.timeline, (), events)


def rebuild(session, case_ids) -> dict[int, dict]:
    """The timelines of these cases derived from the records: task rows in creation order, events in log order."""
    ids = list(case_ids)
    tasks: dict[int, list] = {i: [] for i in ids}
    events: dict[int, list] = {i: [] for i in ids}
    for row in session.execute(select(CaseTask.case_id, CaseTask.created_at, CaseTask.unit_code, CaseTask.lane)
                               .where(CaseTask.case_id.in_(ids))
                               .order_by(CaseTask.case_id, CaseTask.created_at, CaseTask.id)):
        tasks[row.case_id].append(row)
    for row in session.execute(select(CaseEvent.case_id, CaseEvent.type, CaseEvent.at, CaseEvent.lane,
                                      CaseEvent.payload)
                               .where(CaseEvent.case_id.in_(ids), CaseEvent.type.in_(FACT_EVENTS))
                               .order_by(CaseEvent.case_id, CaseEvent.seq)):
        events[row.case_id].append(row)
    return {i: extend(empty(), tasks[i], events[i]) for i in ids}


def canonical(timeline: dict) -> dict:
    """For comparing timelines: task rows of one instant in a fixed order (their insertion order is free)."""
    return dict(timeline, tasks=sorted(timeline["tasks"], key=lambda t: (t[0], t[1] or "", t[2] or "")))
