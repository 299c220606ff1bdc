"""Per-case statistics facts (`case_fact`): the parts of a case's history the figures read, kept compact.

The statistics (engine/services/statistics.py) observe every case *as of* a period's end: the
units it had touched by then, the highest level it had reached, the level whose step produced
its last reply, its ratings and its co-handling units. Read from the records, that is every
task row and every completed-task event of a month's cases, and the events' form payloads
decoded in Python — seconds at city scale. So each case also carries one `case_fact` row (the
table is in models.py; this module keeps it): a timeline of exactly those facts, each stamped
with the instant it happened (integer microseconds since the epoch, so an as-of comparison is
exact):

    {"u": [[t, unit, lane], ...],     # user task rows: the first of each (unit, lane), when it was created
     "r": [[t, lane], ...],           # each unified reply, with the lane of the last task completed
                                      #   before it (its level is read at query time)
     "s": [[t, rating], ...],         # each evaluation's rating (score), in log order
     "c": [[t, [unit, ...]], ...],    # co-handling units named (co_units_added)
     "l": lane}                       # the lane of the last completed task so far

Only the first task of each (unit, lane) is kept: the figures ask which units a case had touched
and the highest level it had reached by an instant, which later tasks of the same pair never
change (a rework loop adds nothing). The keys are short because every case carries one.

The engine appends to it in the same unit of work that writes the events and task rows
(`record`: from CaseOperation.finish, and from ledger.append_events for every other writer of
the log), so it never runs ahead of or behind the log.
`rebuild` derives the same timeline from the records (task rows and the event log); the
statistics use it for a case that has no row (started before migration d_h11f), and a test
checks on a simulated quarter that the incremental rows equal the rebuilt ones.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from engine.store.models import CaseEvent, CaseFact, CaseTask

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MICROSECOND = timedelta(microseconds=1)
REPLY_HANDLER = "unified_reply"  # the service task whose call is the case's reply (统一回告)
RATINGS = ("satisfied", "basically_satisfied", "dissatisfied", "not_implemented")
CO_UNITS_ADDED = "co_units_added"  # the handling event naming co-handling units
FACT_EVENTS = ("task_completed", "service_called", CO_UNITS_ADDED)


def micros(instant: datetime) -> int:
    """An aware instant as integer microseconds since the epoch (exact, and ordered as the instants are)."""
    return (instant - EPOCH) // MICROSECOND


def readable(timeline) -> bool:
    """A timeline in this module's shape (anything else, e.g. a row written by a development build in
    another shape, is rebuilt from the records by the statistics rather than misread)."""
    return (type(timeline) is dict and type(timeline.get("u")) is list and type(timeline.get("r")) is list
            and type(timeline.get("s")) is list and type(timeline.get("c")) is list)


def empty() -> dict:
    return {"u": [], "r": [], "s": [], "c": [], "l": None}


def extend(timeline: dict, tasks, events) -> dict:
    """A new timeline: `timeline` with these task rows (objects with created_at, unit_code, lane) and these
    events (dicts or rows with type, at, lane, payload, in log order) added."""
    out = {key: list(value) if isinstance(value, list) else value for key, value in timeline.items()}
    seen = {(unit, lane) for _, unit, lane in out["u"]}
    for t in tasks:
        if (t.unit_code, t.lane) not in seen:
            seen.add((t.unit_code, t.lane))
            out["u"].append([micros(t.created_at), t.unit_code, t.lane])
    for ev in events:
        get = ev.get if isinstance(ev, dict) else lambda k, _ev=ev: getattr(_ev, k)
        type_, payload = get("type"), get("payload") or {}
        if type_ == "task_completed":
            out["l"] = get("lane")
            rating = (payload.get("data") or {}).get("rating") if isinstance(payload.get("data"), dict) else None
            if rating in RATINGS:
                out["s"].append([micros(get("at")), rating])
        elif type_ == "service_called" and payload.get("handler") == REPLY_HANDLER:
            out["r"].append([micros(get("at")), out["l"]])
        elif type_ == CO_UNITS_ADDED:
            units = [u for u in payload.get("units") or () if isinstance(u, str)]
            if units:
                out["c"].append([micros(get("at")), units])
    return out


def start(session, case_id: int, tasks, events) -> CaseFact:
    """A new case's timeline, in the unit of work that starts the case."""
    row = CaseFact(case_id=case_id, timeline=extend(empty(), tasks, events))
    session.add(row)
    return row


def record(session, case_id: int, tasks=(), events=(), row: CaseFact | None = None) -> CaseFact | None:
    """Add an operation's new task rows and appended events to the case's timeline, in its unit of work:
    CaseOperation.finish passes both at once (one UPDATE) with the row it read with the case, and
    ledger.append_events the events of any other writer of the log. Returns the row (None: it has none).

    A case started before the table existed has no row and gets none: the statistics rebuild its
    timeline from the records instead, which a partial row would silently contradict.
    """
    events = [ev for ev in events if ev["type"] in FACT_EVENTS]
    if not tasks and not events:
        return row
    row = row if row is not None else session.get(CaseFact, case_id)
    if row is not None and readable(row.timeline):  # an unreadable one is left to be rebuilt, never guessed at
        row.timeline = extend(row.timeline, tasks, events)
    return row


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
    return dict(timeline, u=sorted(timeline["u"], key=lambda t: (t[0], t[1] or "", t[2] or "")))


def backfill(session, case_ids) -> int:
    """Write the timelines of these cases that have none, or one in a shape this module does not read,
    rebuilt from the records. The caller holds the cases' locks, so no step of theirs runs meanwhile
    (a step never creates a missing row: it would start from an empty timeline). Returns how many."""
    ids = list(case_ids)
    rows = {r.case_id: r for r in session.scalars(select(CaseFact).where(CaseFact.case_id.in_(ids)))}
    stale = [i for i in ids if i not in rows or not readable(rows[i].timeline)]
    for case_id, timeline in rebuild(session, stale).items():
        if case_id in rows:
            rows[case_id].timeline = timeline
        else:
            session.add(CaseFact(case_id=case_id, timeline=timeline))
    return len(stale)
