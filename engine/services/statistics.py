"""Statistics (综合统计): every figure the supervision centre reports, defined once.

Each figure is one function below (`FIGURES`), with a docstring saying exactly what it
counts; the API, the command line, the XLSX report, the monthly assessment and the
simulation all call `compute_statistics`, which applies the same functions to the whole
scope and to each group. Nothing is typed in: every figure comes from the case records
(`dispute_case`, the `case_task` projection, `supervision`) and the case event log.

Two populations, named in each docstring:

* **the cohort**: cases accepted in the period (by acceptance time, `basis=accepted`, or
  by `reported_at`, `basis=reported`), observed as of the period's end — what happened
  to them later is not counted, so a past period's figures do not move;
* **the activity**: steps (user tasks) that fell due, turned yellow or red, or ended
  in the period, supervision records opened or closed in it, and the refusals and
  transfers of first handling (`case_refused`, `case_transferred` events) recorded in
  it, whichever case they belong to.

Grouping by unit rolls the organisation tree up: a case belongs to its accepting
community, its routed unit and every unit that had a task on it, and to all their
ancestors (a street office counts its communities' cases, the city everything); a step
belongs to its unit and that unit's ancestors. Rates are fractions 0..1 (None when
nothing was counted) with `<key>_numerator` and `<key>_denominator` beside them.
"""
from __future__ import annotations

import gc
import math
from contextlib import contextmanager
from functools import cached_property
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import literal, select, union, union_all

from engine import clock
from engine.errors import Forbidden, InvalidInput, UnitNotFound
from engine.rules.access import sees_all
from engine.store import case_facts
from engine.store.base import UTCDateTime, epoch_micros
from engine.store.models import OPEN_SPAN, Case, CaseEvent, CaseFact, CaseTask
from engine.store.timer_models import Supervision

LEVELS = ("community", "street", "department", "district_coordination", "city_coordination",
          "joint_meeting", "supervision")
RATINGS = case_facts.RATINGS
GOOD_RATINGS = frozenset({"satisfied", "basically_satisfied"})
BAD_RATINGS = frozenset({"dissatisfied", "not_implemented"})
GROUPINGS = ("unit", "category", "channel", "level", "community")
REFUSED, TRANSFERRED = "case_refused", "case_transferred"  # handling events
CO_UNITS_ADDED = case_facts.CO_UNITS_ADDED
BASES = ("accepted", "reported")
SIGN_FOR_STEPS = frozenset({"sign_for", "co_sign_for"})  # a co-handling unit signs for its part too
HANDLING_STEPS = frozenset({"handle", "co_handle"})
AGE_BUCKETS = ((0, 2), (3, 5), (6, 10), (11, 20), (21, None))  # working days, inclusive
CHUNK = 500  # ids per IN (...) list


# -- the period -----------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC, from local calendar dates; `basis` says which instant selects the cohort."""

    first_day: date
    last_day: date
    start: datetime
    end: datetime
    basis: str = "accepted"
    observed: datetime | None = None  # set when the period is made: min(end, just after now)

    def as_of(self) -> datetime:
        """The exclusive bound of what is observed: the period's end, or just after now for a current period."""
        return self.observed

    def view(self) -> dict:
        return {"from": self.first_day.isoformat(), "to": self.last_day.isoformat(), "basis": self.basis,
                "start": self.start.isoformat(), "end": self.end.isoformat(), "as_of": self.as_of().isoformat()}


def period(rt, first_day: date, last_day: date, basis: str = "accepted") -> Period:
    if basis not in BASES:
        raise InvalidInput(f"unknown basis {basis!r}", errors={"basis": [f"must be one of: {', '.join(BASES)}"]})
    if last_day < first_day:
        raise InvalidInput("the period ends before it starts", errors={"to": ["must not be before 'from'"]})
    start = datetime.combine(first_day, time(), rt.tz)
    end = datetime.combine(last_day + timedelta(days=1), time(), rt.tz)
    return Period(first_day, last_day, start, end, basis, min(end, clock.now() + timedelta(microseconds=1)))


def month_period(rt, month: str, basis: str = "accepted") -> Period:
    """The calendar month 'YYYY-MM' (local time)."""
    try:
        first = datetime.strptime(month, "%Y-%m").date()
    except (TypeError, ValueError):
        raise InvalidInput(f"not a month: {month!r}", errors={"month": ["expected YYYY-MM, e.g. 2026-11"]})
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return period(rt, first, following - timedelta(days=1), basis)


# -- the facts the figures read ---------------------------------------------------------


@dataclass(slots=True)
class CaseFacts:
    id: int
    case_no: str
    category: str
    channel: str
    community: str
    accepted_at: datetime
    closed_at: datetime | None
    units: frozenset[str]          # every unit it touched, and their ancestors (the roll-up)
    own_units: frozenset[str]      # only the units it touched itself
    level_reached: str
    resolved_level: str | None = None
    ratings: list[str] = field(default_factory=list)
    co_units: frozenset[str] = frozenset()  # co-handling units named by `co_units_added` events
    age_days: int | None = None    # backlog only: working days from acceptance to the period's end
    # verdicts, decided once per case when the facts are loaded (`_judge_case`), read by every group's figures
    final_rating: str | None = None
    bad_ratings: int = 0
    same_month: bool = False


@dataclass(slots=True)
class StepFacts:
    case_no: str
    step: str
    unit: str | None
    category: str
    channel: str
    community: str
    level: str | None
    state: str
    # instants as integer microseconds since the epoch (engine.store.base.epoch_micros), compared as integers
    created: int
    ended: int | None               # None: not ended by the period's end
    due: int | None
    warn: int | None
    units: frozenset[str] = frozenset()
    taken_days: int | None = None  # completed in the period: working days from ready to completed
    limit_days: int | None = None  # ... and from ready to its deadline
    # verdicts, decided once per step when the facts are loaded (`_judge_step`)
    decided: bool | None = None    # None: not decided in the period; else on time or not
    yellow: bool = False
    red: bool = False


@dataclass
class Facts:
    period: Period
    cases: list[CaseFacts]
    steps: list[StepFacts]
    supervision: list[dict]
    backlog: list[CaseFacts]
    handling: list[dict] = field(default_factory=list)  # refusals and transfers recorded in the period

    # What several figures read, worked out once per set of facts (read only once the facts are filled).
    @cached_property
    def closed_cases(self) -> list[CaseFacts]:
        return [c for c in self.cases if c.closed_at is not None]

    @cached_property
    def decided_steps(self) -> list[StepFacts]:
        return [s for s in self.steps if s.decided is not None]

    @cached_property
    def completed_steps(self) -> list[StepFacts]:
        return [s for s in self.steps if s.taken_days is not None]

    def subset(self, case_pred, step_pred, sup_pred) -> "Facts":
        """Supervision records and handling events share one predicate (both are dicts with the same keys)."""
        return Facts(self.period, [c for c in self.cases if case_pred(c)], [s for s in self.steps if step_pred(s)],
                     [r for r in self.supervision if sup_pred(r)], [c for c in self.backlog if case_pred(c)],
                     [h for h in self.handling if sup_pred(h)])


def _chunks(ids):
    ids = list(ids)
    for i in range(0, len(ids), CHUNK):
        yield ids[i:i + CHUNK]


_RANKS = {level: rank for rank, level in enumerate(LEVELS[:-1])}  # supervision is no rung of the ladder


def _level_rank(level: str | None) -> int:
    return _RANKS.get(level, -1)


def _case_facts(rt, session, rows, as_of: datetime, with_events: bool, rollup: "_Rollup") -> list[CaseFacts]:
    """The facts of these cases as of `as_of`, from their statistics timelines (engine.store.case_facts):
    one row per case, read with the case (`_with_timeline`), instead of its task rows and events; a case
    without one (started before there were timelines) has it rebuilt from those."""
    timelines = {r.id: r.timeline for r in rows if case_facts.readable(r.timeline)}
    for chunk in _chunks([r.id for r in rows if r.id not in timelines]):
        timelines.update(case_facts.rebuild(session, chunk))
    cut = case_facts.micros(as_of)
    return [_fold(rt, r, timelines[r.id], as_of, cut, with_events, rollup) for r in rows]


def _with_timeline(stmt):
    """A select of CASE_COLUMNS with each case's statistics timeline beside it (None: the case has none).

    A correlated lookup by key, not a join: the planner, misjudging how many cases a range selects,
    would otherwise hash the whole timeline table for a few thousand cases."""
    return stmt.add_columns(select(CaseFact.timeline).where(CaseFact.case_id == Case.id)
                            .scalar_subquery().label("timeline"))


def _fold(rt, r, timeline: dict, as_of: datetime, cut: int, with_events: bool, rollup: "_Rollup") -> CaseFacts:
    """One case's facts as of the instant `cut` (microseconds): what its timeline recorded before it."""
    lanes = rt.tables.lanes
    own = {r.community_code} | ({r.routed_unit} if r.routed_unit else set())
    reached = None
    for at, unit, lane in timeline["u"]:
        if at >= cut:
            continue
        if unit:
            own.add(unit)
        level = lanes[lane].level if lane in lanes else None
        if _level_rank(level) > _level_rank(reached):
            reached = level
    closed = r.closed_at if r.closed_at is not None and r.closed_at < as_of else None
    f = CaseFacts(r.id, r.case_no, r.category, r.channel, r.community_code, r.created_at, closed,
                  rollup(own), frozenset(own), reached or "community")
    if not with_events:
        return f
    f.ratings = [rating for at, rating in timeline["s"] if at < cut]
    if closed is not None:
        for at, lane in timeline["r"]:
            if at < cut:
                f.resolved_level = lanes[lane].level if lane in lanes else None
    co = {unit for at, units in timeline["c"] if at < cut for unit in units}
    if co:  # a co-unit answers for the case as every unit on it does
        f.co_units = frozenset(co)
        f.own_units = f.own_units | f.co_units
        f.units = f.units | rollup(co)
    return f


def _case_facts_from_records(rt, session, rows, as_of: datetime, with_events: bool,
                             rollup: "_Rollup") -> list[CaseFacts]:
    """The same facts read from the task rows and the event log directly: the recomputation the timelines
    are checked against (tests), and how they were read before there were timelines."""
    lanes = rt.tables.lanes
    by_id = {r.id: r for r in rows}
    units: dict[int, set[str]] = defaultdict(set)
    reached: dict[int, str] = {}
    for chunk in _chunks(by_id):
        for case_id, unit, lane in session.execute(
                select(CaseTask.case_id, CaseTask.unit_code, CaseTask.lane)
                .where(CaseTask.case_id.in_(chunk), CaseTask.created_at < as_of)):
            if unit:
                units[case_id].add(unit)
            level = lanes[lane].level if lane in lanes else None
            if _level_rank(level) > _level_rank(reached.get(case_id)):
                reached[case_id] = level
    facts = {}
    for r in rows:
        closed = r.closed_at if r.closed_at is not None and r.closed_at < as_of else None
        own = {r.community_code, *units[r.id]} | ({r.routed_unit} if r.routed_unit else set())
        facts[r.id] = CaseFacts(r.id, r.case_no, r.category, r.channel, r.community_code, r.created_at, closed,
                                rollup(own), frozenset(own),
                                reached.get(r.id, "community"))
    if with_events:
        _read_outcomes(rt, session, facts, as_of, rollup)
    return list(facts.values())


def _read_outcomes(rt, session, facts: dict[int, CaseFacts], as_of: datetime, rollup: "_Rollup") -> None:
    """From the event log: the level whose step produced the (last) reply, every rating, the co-units.

    Only the two payload fields the figures read are extracted, by the database (`rating` of a
    completed task's form, `handler` of a service call): a completed task's payload holds its whole
    form, and decoding it in Python for every event of a city's month costs more than the rest.
    """
    lanes = rt.tables.lanes
    last_lane: dict[int, str | None] = {}
    co_units: dict[int, set[str]] = defaultdict(set)
    rating_of = CaseEvent.payload["data"]["rating"].as_string()
    handler_of = CaseEvent.payload["handler"].as_string()
    for chunk in _chunks(facts):
        stmt = (select(CaseEvent.case_id, CaseEvent.type, CaseEvent.lane, rating_of, handler_of)
                .where(CaseEvent.case_id.in_(chunk), CaseEvent.at < as_of,
                       CaseEvent.type.in_(("task_completed", "service_called")))
                .order_by(CaseEvent.case_id, CaseEvent.seq))
        for case_id, type_, lane, rating, handler in session.execute(stmt):
            if type_ == "task_completed":
                last_lane[case_id] = lane
                if rating in RATINGS:
                    facts[case_id].ratings.append(rating)
            elif handler == case_facts.REPLY_HANDLER:
                lane_of_reply = last_lane.get(case_id)
                facts[case_id].resolved_level = lanes[lane_of_reply].level if lane_of_reply in lanes else None
        for case_id, payload in session.execute(  # rare: the whole payload is read only for these
                select(CaseEvent.case_id, CaseEvent.payload)
                .where(CaseEvent.case_id.in_(chunk), CaseEvent.at < as_of, CaseEvent.type == CO_UNITS_ADDED)):
            co_units[case_id].update(u for u in (payload or {}).get("units") or () if isinstance(u, str))
    for f in facts.values():
        if f.closed_at is None:
            f.resolved_level = None
    for case_id, codes in co_units.items():  # a co-unit answers for the case as every unit on it does
        f = facts[case_id]
        f.co_units = frozenset(codes)
        f.own_units = f.own_units | f.co_units
        f.units = f.units | rollup(codes)


class _Rollup:
    """Units with all their ancestors (the roll-up), kept per set of units for one load of facts: a
    city's month asks for a few hundred distinct sets tens of thousands of times."""

    def __init__(self, tables):
        self.tables = tables
        self.memo: dict[frozenset[str], frozenset[str]] = {}

    def __call__(self, codes) -> frozenset[str]:
        key = codes if isinstance(codes, frozenset) else frozenset(codes)
        found = self.memo.get(key)
        if found is None:
            found = self.memo[key] = frozenset(_with_ancestors(self.tables, key))
        return found


def _with_ancestors(tables, codes) -> set[str]:
    out = set()
    for code in codes:
        unit, seen = tables.units.get(code), set()
        out.add(code)
        while unit is not None and unit.parent and unit.parent not in seen:
            seen.add(unit.parent)
            out.add(unit.parent)
            unit = tables.units.get(unit.parent)
    return out


CASE_COLUMNS = (Case.id, Case.case_no, Case.category, Case.channel, Case.community_code, Case.routed_unit,
                Case.created_at, Case.closed_at)


def load_facts(rt, session, p: Period, from_records: bool = False) -> Facts:
    """The period's facts; `from_records` reads the cases' facts from their task rows and event log instead
    of their statistics timelines (the recomputation the timelines must equal)."""
    read_cases = _case_facts_from_records if from_records else _case_facts
    as_of = p.as_of().astimezone(timezone.utc)  # the stored instants' zone: compared without conversions
    instant = Case.created_at if p.basis == "accepted" else _reported_column()
    cohort = session.execute(_with_timeline(select(*CASE_COLUMNS)).where(instant >= p.start, instant < p.end,
                                                                         Case.created_at < as_of)).all()
    rollup = _Rollup(rt.tables)
    cases = read_cases(rt, session, cohort, as_of, with_events=True, rollup=rollup)
    # open at the period's end: accepted before it and not closed by it. PostgreSQL: the GiST index over
    # each case's open span (created_at, closed_at]; SQLite: still open, or closed only after it (two
    # index ranges, not one OR scan).
    if session.bind.dialect.name == "postgresql":
        open_rows = session.execute(_with_timeline(select(*CASE_COLUMNS))
                                    .where(OPEN_SPAN.op("@>")(literal(as_of, UTCDateTime)))).all()
    else:
        open_rows = session.execute(union_all(
            _with_timeline(select(*CASE_COLUMNS)).where(Case.closed_at.is_(None), Case.created_at < as_of),
            _with_timeline(select(*CASE_COLUMNS)).where(Case.closed_at >= as_of, Case.created_at < as_of))).all()
    backlog = read_cases(rt, session, open_rows, as_of, with_events=False, rollup=rollup)
    days = rt.calendar.working_days_between
    for c in backlog:
        c.age_days = days(c.accepted_at, as_of)
    steps = _step_facts(rt, session, p, as_of, rollup)
    touched = union(*(select(Supervision.id).where(col >= p.start, col < as_of)
                      for col in (Supervision.opened_at, Supervision.closed_at))).subquery()
    supervision = [
        {"case_no": no, "unit": unit, "step": step, "opened": p.start <= opened < p.end,
         "closed": closed is not None and p.start <= closed < p.end,
         "category": cat, "channel": ch, "community": com, "units": rollup((unit,))}
        for no, unit, step, opened, closed, cat, ch, com in session.execute(
            select(Case.case_no, Supervision.unit_code, Supervision.step, Supervision.opened_at,
                   Supervision.closed_at, Case.category, Case.channel, Case.community_code)
            .join(Case, Case.id == Supervision.case_id)
            .where(Supervision.id.in_(select(touched.c.id))))]
    for c in cases:
        _judge_case(c, p)
    return Facts(p, cases, steps, supervision, backlog, _handling_facts(rt, session, p, as_of, rollup))


def _handling_facts(rt, session, p: Period, as_of: datetime, rollup: _Rollup) -> list[dict]:
    """The refusals and transfers recorded in the period, each on the unit that refused or handed the case on."""
    lanes = rt.tables.lanes
    out = []
    for type_, lane, payload, no, cat, ch, com in session.execute(
            select(CaseEvent.type, CaseEvent.lane, CaseEvent.payload, Case.case_no, Case.category, Case.channel,
                   Case.community_code)
            .join(Case, Case.id == CaseEvent.case_id)
            .where(CaseEvent.type.in_((REFUSED, TRANSFERRED)), CaseEvent.at >= p.start, CaseEvent.at < as_of)
            .order_by(CaseEvent.case_id, CaseEvent.seq)):
        payload = payload or {}
        unit = payload.get("unit") if type_ == REFUSED else payload.get("from_unit")
        unit = unit if isinstance(unit, str) else None
        out.append({"kind": type_, "case_no": no, "unit": unit, "category": cat, "channel": ch, "community": com,
                    "level": lanes[lane].level if lane in lanes else None,
                    "units": rollup((unit,)) if unit else frozenset()})
    return out


def _reported_column():
    return getattr(Case, "reported_at", Case.created_at)


def _step_facts(rt, session, p: Period, as_of: datetime, rollup: _Rollup) -> list[StepFacts]:
    lanes = rt.tables.lanes
    # A step of the activity ended, fell due or turned yellow in the period: three disjoint index ranges
    # (statistics_indexes; due_at's own) read as one UNION ALL, never an OR across the columns nor a
    # join of the whole task table against the ids, which both scan every step of the city.
    columns = (CaseTask.bpmn_id, CaseTask.unit_code, CaseTask.lane, CaseTask.state,
               *(epoch_micros(col) for col in (CaseTask.created_at, CaseTask.ended_at, CaseTask.due_at,
                                               CaseTask.warn_at)),
               Case.case_no, Case.category, Case.channel, Case.community_code)

    def within(col):
        return (col >= p.start) & (col < as_of)

    def outside(col):
        return col.is_(None) | (col < p.start) | (col >= as_of)

    stmt = union_all(*(select(*columns).join(Case, Case.id == CaseTask.case_id)
                       .where(CaseTask.created_at < as_of, *clauses)
                       for clauses in ((within(CaseTask.ended_at),),
                                       (within(CaseTask.due_at), outside(CaseTask.ended_at)),
                                       (within(CaseTask.warn_at), outside(CaseTask.ended_at),
                                        outside(CaseTask.due_at)))))
    out = []
    local_date, days_after = rt.calendar.local_date_of_micros, rt.calendar.working_days_after
    start, end = case_facts.micros(p.start), case_facts.micros(as_of)
    levels = {name: rule.level for name, rule in lanes.items()}
    for bpmn_id, unit, lane, state, created, ended, due, warn, no, cat, ch, com in session.execute(stmt).all():
        if ended is not None and ended >= end:
            ended = None
        step = StepFacts(no, bpmn_id, unit, cat, ch, com, levels.get(lane), state if ended is not None else "open",
                         created, ended, due, warn, rollup((unit,)) if unit else frozenset())
        if ended is not None and state == "completed" and ended >= start:
            ready = local_date(created)
            step.taken_days = days_after(ready, local_date(ended)) if ended > created else 0
            step.limit_days = (days_after(ready, local_date(due)) if due > created else 0) if due is not None else None
        _judge_step(step, start, end)
        out.append(step)
    return out


# -- the figures --------------------------------------------------------------------------


def _judge_case(c: CaseFacts, p: Period) -> None:
    """What the figures below ask of one cohort case, decided once when the facts are loaded (every group
    it falls in reads the verdict): its final rating (`ratings`), its dissatisfied evaluations
    (`reopened`), whether it closed in its month of acceptance (`resolved_within_month_rate`)."""
    tz = p.start.tzinfo
    c.final_rating = c.ratings[-1] if c.closed_at is not None and c.ratings else None
    c.bad_ratings = sum(1 for r in c.ratings if r in BAD_RATINGS)
    if c.closed_at is not None:
        closed, accepted_local = c.closed_at.astimezone(tz), c.accepted_at.astimezone(tz)
        c.same_month = (closed.year, closed.month) == (accepted_local.year, accepted_local.month)


def _judge_step(s: StepFacts, start: int, end: int) -> None:
    """What the figures below ask of one step, the period being [start, end) in microseconds: decided on
    time or late in the period (`_decided_steps`: the on-time rates), turned yellow or red in it
    (`yellow_lights`, `red_lights`)."""
    ended, due, warn = s.ended, s.due, s.warn
    if due is not None:
        if ended is not None and s.state == "completed" and start <= ended:
            s.decided = ended <= due
        elif (ended is None or ended > due) and start <= due < end:
            s.decided = False  # fell due in the period without being done in time (open, or cancelled by escalation)
    s.yellow = warn is not None and start <= warn < end and (ended is None or ended > warn)
    s.red = due is not None and start <= due < end and (ended is None or ended > due)


def _rate(numerator: int, denominator: int) -> dict:
    return {"value": round(numerator / denominator, 4) if denominator else None,
            "numerator": numerator, "denominator": denominator}


def accepted(f: Facts):
    """Cases in the cohort: accepted (or reported, by the basis) in the period."""
    return len(f.cases)


def completed(f: Facts):
    """Cohort cases closed (办结) by the period's end."""
    return len(f.closed_cases)


def completion_rate(f: Facts):
    """办结率: completed over accepted."""
    return _rate(completed(f), accepted(f))


def resolved_by_level(f: Facts):
    """Completed cohort cases by the level whose step produced the reply that closed them: community
    (社区调解), street (街道协调), department (the routed unit's handling and approval), district and city
    coordination, the joint meeting, supervision (监管中心裁决). The last reply counts after a rework."""
    counts = {level: 0 for level in LEVELS}
    for c in f.closed_cases:
        if c.resolved_level in counts:
            counts[c.resolved_level] += 1
    return counts


def resolved_share_by_level(f: Facts):
    """Each level's share of the completed cohort cases ("小事不出社区、大事不出街道、矛盾不上交")."""
    done = completed(f)
    return {level: (round(n / done, 4) if done else None) for level, n in resolved_by_level(f).items()}


def resolved_within_month_rate(f: Facts):
    """Cohort cases closed in the same local calendar month as accepted, over accepted."""
    return _rate(sum(1 for c in f.cases if c.same_month), accepted(f))


def ratings(f: Facts):
    """Completed cohort cases by their final rating (the last evaluation before the period's end)."""
    counts = {r: 0 for r in RATINGS}
    for c in f.closed_cases:  # only a closed case has a final rating (`_judge_case`)
        if c.final_rating is not None:
            counts[c.final_rating] += 1
    return counts


def satisfaction_rate(f: Facts):
    """满意率: completed cohort cases finally rated satisfied or basically satisfied, over those rated."""
    r = ratings(f)
    return _rate(r["satisfied"] + r["basically_satisfied"], sum(r.values()))


def reopened(f: Facts):
    """Evaluations of cohort cases rated dissatisfied or not implemented (不满意/未落实): each sent the
    case back to the supervision centre for rework."""
    return sum(c.bad_ratings for c in f.cases)


def _decided_steps(f: Facts, steps: frozenset[str]):
    """(step, on time?) for the steps of these kinds completed in the period, or fallen due in it undone
    (`_judge_step`)."""
    for s in f.decided_steps:
        if s.step in steps:
            yield s, s.decided


def _on_time(f: Facts, steps: frozenset[str]):
    decided = list(_decided_steps(f, steps))
    return _rate(sum(1 for _, ok in decided if ok), len(decided))


def on_time_sign_for_rate(f: Facts):
    """签收及时率: sign-for steps completed in the period by their deadline, over the sign-for steps
    completed in the period plus those whose deadline passed in the period undone."""
    return _on_time(f, SIGN_FOR_STEPS)


def on_time_handling_rate(f: Facts):
    """办理及时率: the same rule for the handling steps (分线处理)."""
    return _on_time(f, HANDLING_STEPS)


def _lit(f: Facts, light: str):
    """The steps that turned `light` (yellow: their warning point; red: their deadline) in the period before
    they ended (`_judge_step`)."""
    return (s for s in f.steps if getattr(s, light))


def yellow_lights(f: Facts):
    """Steps whose warning point fell in the period before they ended (黄灯)."""
    return sum(1 for s in f.steps if s.yellow)


def red_lights(f: Facts):
    """Steps whose deadline fell in the period before they were done (红灯)."""
    return sum(1 for s in f.steps if s.red)


def supervised(f: Facts):
    """Supervision records (督办) opened in the period."""
    return sum(1 for r in f.supervision if r["opened"])


def supervision_closed(f: Facts):
    """Supervision records closed in the period."""
    return sum(1 for r in f.supervision if r["closed"])


def refusals(f: Facts):
    """Refusals (拒收/退回) recorded in the period: `case_refused` events, each counted once, on the unit
    that refused (the event's `unit`) and its ancestors, whether a main handler or a co-handler refused."""
    return sum(1 for h in f.handling if h["kind"] == REFUSED)


def transfers(f: Facts):
    """Transfers of first handling (转办) recorded in the period: `case_transferred` events, each counted once,
    on the unit the case was transferred from (the event's `from_unit`) and its ancestors."""
    return sum(1 for h in f.handling if h["kind"] == TRANSFERRED)


def co_handled(f: Facts):
    """Cohort cases handled jointly (协办): those with at least one co-handling unit named by a `co_units_added`
    event before the period's end; by unit, each case counts for its lead units and for every co-unit."""
    return sum(1 for c in f.cases if c.co_units)


def step_days(f: Facts):
    """Per step (BPMN element), over the steps completed in the period: how many, the average and the
    90th percentile of working days taken (from ready to completed), and the average limit it had
    (working days from ready to its deadline)."""
    taken: dict[str, list[int]] = defaultdict(list)
    limits: dict[str, list[int]] = defaultdict(list)
    for s in f.completed_steps:
        taken[s.step].append(s.taken_days)
        if s.limit_days is not None:
            limits[s.step].append(s.limit_days)
    out = {}
    for step, days in sorted(taken.items()):
        days.sort()
        out[step] = {"count": len(days), "avg": round(sum(days) / len(days), 2),
                     "p90": days[max(0, math.ceil(0.9 * len(days)) - 1)],
                     "limit_avg": round(sum(limits[step]) / len(limits[step]), 2) if limits[step] else None}
    return out


def backlog_by_age(f: Facts):
    """Cases open at the period's end, by working days since acceptance: 0–2, 3–5, 6–10, 11–20, 21+."""
    out = {(f"{lo}-{hi}" if hi is not None else f"{lo}+"): 0 for lo, hi in AGE_BUCKETS}
    for c in f.backlog:
        age = c.age_days
        for (lo, hi), key in zip(AGE_BUCKETS, out):
            if age >= lo and (hi is None or age <= hi):
                out[key] += 1
                break
    return out


FIGURES = {fn.__name__: fn for fn in (
    accepted, completed, completion_rate, resolved_by_level, resolved_share_by_level, resolved_within_month_rate,
    ratings, satisfaction_rate, reopened, on_time_sign_for_rate, on_time_handling_rate, yellow_lights, red_lights,
    supervised, supervision_closed, refusals, transfers, co_handled, step_days, backlog_by_age)}


RATES = frozenset({"completion_rate", "resolved_within_month_rate", "satisfaction_rate", "on_time_sign_for_rate",
                   "on_time_handling_rate"})
COUNTS = frozenset({"accepted", "completed", "reopened", "yellow_lights", "red_lights", "supervised",
                    "supervision_closed", "refusals", "transfers", "co_handled"})

# The cases behind a figure (the assessment's drill-down), for the figures that can cost a unit points.
BEHIND = {
    "completion_rate": lambda f: [c.case_no for c in f.cases if c.closed_at is None],
    "satisfaction_rate": lambda f: [c.case_no for c in f.cases if c.final_rating in BAD_RATINGS],
    "reopened": lambda f: [c.case_no for c in f.cases if c.bad_ratings],
    "on_time_sign_for_rate": lambda f: [s.case_no for s, ok in _decided_steps(f, SIGN_FOR_STEPS) if not ok],
    "on_time_handling_rate": lambda f: [s.case_no for s, ok in _decided_steps(f, HANDLING_STEPS) if not ok],
    "yellow_lights": lambda f: [s.case_no for s in _lit(f, "yellow")],
    "red_lights": lambda f: [s.case_no for s in _lit(f, "red")],
    "supervised": lambda f: [r["case_no"] for r in f.supervision if r["opened"]],
    "refusals": lambda f: [h["case_no"] for h in f.handling if h["kind"] == REFUSED],
    "transfers": lambda f: [h["case_no"] for h in f.handling if h["kind"] == TRANSFERRED],
    "co_handled": lambda f: [c.case_no for c in f.cases if c.co_units],
}


def behind(key: str, f: Facts) -> list[str]:
    """The case numbers behind figure `key` (sorted, each once)."""
    return sorted(set(BEHIND[key](f)))


def figures(f: Facts) -> dict:
    """Every figure of `FIGURES` over the facts, rates spread as value + numerator + denominator."""
    out = {}
    for key, fn in FIGURES.items():
        value = fn(f)
        if isinstance(value, dict) and set(value) == {"value", "numerator", "denominator"}:
            out[key] = value["value"]
            out[f"{key}_numerator"] = value["numerator"]
            out[f"{key}_denominator"] = value["denominator"]
        else:
            out[key] = value
    return out


def definitions() -> list[dict]:
    """The definitions table (key and what it counts), as the README and the console show it."""
    return [{"key": key, "definition": " ".join(fn.__doc__.split())} for key, fn in FIGURES.items()]


# -- grouping, filters and scope ------------------------------------------------------------


def _group_keys(group_by: str):
    """(key of a case, key of a step, key of a supervision record, key of a handling event); unit keys are
    sets (roll-up)."""
    if group_by == "unit":
        return (lambda c: c.units,
                lambda s: s.units,
                lambda r: r["units"],
                lambda h: h["units"])
    if group_by == "level":
        return (lambda c: {c.resolved_level or c.level_reached}, lambda s: {s.level}, lambda r: set(),
                lambda h: {h["level"]})
    attr = {"category": "category", "channel": "channel", "community": "community"}[group_by]
    return (lambda c: {getattr(c, attr)}, lambda s: {getattr(s, attr)}, lambda r: {r[attr]}, lambda h: {h[attr]})


def by_own_unit(facts: Facts) -> dict[str, Facts]:
    """The facts of each unit's own cases, steps and supervision records (no roll-up), by unit code."""
    out: dict[str, Facts] = defaultdict(lambda: Facts(facts.period, [], [], [], []))
    for c in facts.cases:
        for code in c.own_units:
            out[code].cases.append(c)
    for c in facts.backlog:
        for code in c.own_units:
            out[code].backlog.append(c)
    for s in facts.steps:
        if s.unit:
            out[s.unit].steps.append(s)
    for r in facts.supervision:
        if r["unit"]:
            out[r["unit"]].supervision.append(r)
    for h in facts.handling:
        if h["unit"]:
            out[h["unit"]].handling.append(h)
    return out


def _scope_units(rt, user, unit: str | None) -> set[str] | None:
    """The units whose subtree the caller may see (None: all); `unit` narrows it to one subtree."""
    if user is not None and not sees_all(user):
        allowed = {user.unit_code} | rt.tables.descendants(user.unit_code)
        if unit is not None and unit not in allowed:
            raise Forbidden(f"unit {unit} is outside your scope", errors={"unit": ["outside your scope"]})
        if unit is None:
            unit = user.unit_code
    if unit is None:
        return None
    if unit not in rt.tables.units:
        raise UnitNotFound(f"no unit {unit!r} in the organisation", errors={"unit": ["not a unit of the organisation"]})
    return {unit} | rt.tables.descendants(unit)


def compute_statistics(rt, user, p: Period, group_by: str | None = None, unit: str | None = None,
                       category: str | None = None, channel: str | None = None) -> dict:
    """The figures for the period, in the caller's scope, filtered and grouped as asked."""
    if group_by is not None and group_by not in GROUPINGS:
        raise InvalidInput(f"unknown grouping {group_by!r}",
                           errors={"group_by": [f"must be one of: {', '.join(GROUPINGS)}"]})
    if category is not None and category not in rt.tables.routes:
        raise InvalidInput(f"unknown category {category!r}", errors={"category": ["not a category of routing.toml"]})
    scope = _scope_units(rt, user, unit)
    with rt.db.read() as session, without_cycle_collection():
        facts = load_facts(rt, session, p)
        return _assemble(rt, facts, scope, group_by, category, channel)


@contextmanager
def without_cycle_collection():
    """Python's cycle collector paused while a period's facts are built: they are tens of thousands of small
    acyclic objects, and the collector's passes over them cost a third of a city's month (bench/stats_bench.py).
    Reference counting still frees everything; the collector resumes (if it ran before) when the block ends."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def backfill_timelines(rt, batch: int = 500) -> dict:
    """Give every case a readable statistics timeline (engine.store.case_facts), rebuilt from its records:
    the cases started before migration d_h11f, whose timelines the figures otherwise rebuild on every
    read. One transaction per batch of cases, each case locked while its timeline is written; safe to run
    beside the engine, and to run again (only what is missing or unreadable is written)."""
    done, last_id = 0, 0
    while True:
        with rt.db.write() as session:
            ids = list(session.scalars(select(Case.id).where(Case.id > last_id).order_by(Case.id).limit(batch)
                                       .with_for_update()))
            if not ids:
                return {"written": done}
            done += case_facts.backfill(session, ids)
        last_id = ids[-1]


def _assemble(rt, facts: Facts, scope, group_by, category, channel) -> dict:
    def keep(obj_units, cat, ch):
        return ((scope is None or bool(obj_units & scope)) and (category is None or cat == category)
                and (channel is None or ch == channel))

    facts = facts.subset(lambda c: keep(c.units, c.category, c.channel),
                         lambda s: keep(s.units, s.category, s.channel),
                         lambda r: keep(r["units"], r["category"], r["channel"]))
    result = {"period": facts.period.view(), "group_by": group_by,
              "filters": {"units": sorted(scope) if scope is not None else None, "category": category,
                          "channel": channel},
              "total": figures(facts), "groups": []}
    if group_by is None:
        return result
    case_key, step_key, sup_key, handling_key = _group_keys(group_by)
    buckets: dict[str, Facts] = defaultdict(lambda: Facts(facts.period, [], [], [], []))
    for c in facts.cases:
        for key in case_key(c):
            buckets[key].cases.append(c)
    for c in facts.backlog:
        for key in case_key(c):
            buckets[key].backlog.append(c)
    for s in facts.steps:
        for key in step_key(s):
            buckets[key].steps.append(s)
    for r in facts.supervision:
        for key in sup_key(r):
            buckets[key].supervision.append(r)
    for h in facts.handling:
        for key in handling_key(h):
            buckets[key].handling.append(h)
    keys = set(buckets) - {None}
    if scope is not None and group_by in ("unit", "community"):
        keys &= scope
    for key in sorted(keys):
        unit = rt.tables.units.get(key) if group_by in ("unit", "community") else None
        result["groups"].append({"key": key, "name": unit.name if unit else key,
                                 "kind": unit.kind if unit else None, **figures(buckets[key])})
    return result
