"""The case lists' overdue filter at scale: `Case.open_due_at`, the earliest deadline of a case's open steps,
kept by the engine in every operation, always equals what the task rows say, and the filter selects exactly
the cases with a red open step (the rule of engine.rules.deadlines.light) as the clock moves."""
from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import select

from engine.rules.access import Caller
from engine.services.cases import start_case
from engine.services.search import list_cases
from engine.services.supervision import list_supervisions
from engine.services.tasks import list_tasks
from engine.services.simulation import simulate
from engine.store.models import Case, CaseTask
from engine.store.timer_models import Supervision
from tests.support import intake
from timers import TimerService


def _open_dues(session) -> dict[str, datetime | None]:
    """case_no -> the earliest due_at of its ready task rows, read from the rows themselves."""
    out = {no: None for no in session.scalars(select(Case.case_no))}
    for no, due in session.execute(select(Case.case_no, CaseTask.due_at).join(Case, Case.id == CaseTask.case_id)
                                   .where(CaseTask.state == "ready", CaseTask.due_at.is_not(None))):
        out[no] = due if out[no] is None else min(out[no], due)
    return out


def test_the_overdue_filter_equals_the_task_rows_through_a_simulated_month(rt, clock):
    simulate(rt, date(2025, 3, 1), date(2025, 3, 31), 7, TimerService(rt, "sim").run_until_idle, cases_total=60)
    with rt.db.read() as session:
        kept = dict(session.execute(select(Case.case_no, Case.open_due_at)).all())
        expected = _open_dues(session)
        closed = set(session.scalars(select(Case.case_no).where(Case.closed_at.is_not(None))))
    assert kept == expected
    assert closed and all(kept[no] is None for no in closed)
    dues = sorted(d for d in expected.values() if d is not None)
    assert len(dues) >= 3, "the month should leave cases open with deadlines"
    centre = Caller("jgzx_supervisor", "监管员", "YC-JGZX", "supervision_centre", frozenset({"supervisor"}))
    # instants before, between and after the open deadlines: the filter follows the clock
    for instant in (dues[0] - timedelta(seconds=1), dues[len(dues) // 2], dues[-1] + timedelta(days=1)):
        clock.set(instant.astimezone(timezone.utc))
        late = {no for no, due in expected.items() if due is not None and due <= instant}
        listed = list_cases(rt, centre, {"overdue": True, "per_page": 100})
        assert {c["case_no"] for c in listed["items"]} == late and listed["total"] == len(late)
        others = list_cases(rt, centre, {"overdue": False, "per_page": 100})
        assert {c["case_no"] for c in others["items"]} == set(expected) - late


def test_lists_read_off_their_own_indexes_equal_the_general_rule(rt, clock):
    """A unit's unfiltered case list (read off `case_unit` in order) has the cases, order and total of the
    general rule (`access.scope_clause`, newest first), for every unit that took part in a simulated
    fortnight; the task lists' totals (the task rows counted alone) equal the rows they list."""
    from engine.rules.access import scope_clause, scope_unit
    from engine.store.models import CaseUnit

    simulate(rt, date(2025, 3, 3), date(2025, 3, 14), 7, TimerService(rt, "sim").run_until_idle, cases_total=30)
    with rt.db.read() as session:
        units = session.execute(select(CaseUnit.unit_code).distinct()).scalars().all()
    checked = 0
    for code in units:
        unit = rt.tables.units.get(code)
        caller = Caller(username="u", display_name="u", unit_code=code, unit_kind=unit.kind if unit else "department",
                        roles=frozenset({"handler"}))
        if scope_unit(rt.tables, caller) is None:
            continue  # a street, the centre: the general shape
        with rt.db.read() as session:
            expected = session.scalars(select(Case.case_no).where(scope_clause(rt.tables, caller))
                                       .order_by(Case.created_at.desc(), Case.id.desc())).all()
        got, page = [], 1
        while True:
            listed = list_cases(rt, caller, {"page": page, "per_page": 7})
            assert listed["total"] == len(expected) and not listed["total_estimated"]
            got += [item["case_no"] for item in listed["items"]]
            if len(listed["items"]) < 7:
                break
            page += 1
        assert got == expected, code
        checked += 1
    assert checked >= 3, units

    # The task lists count the task rows alone unless a filter reads the case: the totals still equal
    # the rows listed, with and without such a filter (three new cases wait in one community's queue).
    for _ in range(3):
        start_case(rt, intake(), "test")
    with rt.db.read() as session:
        queues = session.execute(select(CaseTask.unit_code, CaseTask.role, Case.case_no)
                                 .join(Case, Case.id == CaseTask.case_id)
                                 .where(CaseTask.state == "ready", CaseTask.unit_code.is_not(None))).all()
    by_queue = Counter((code, role) for code, role, _ in queues)
    assert max(by_queue.values()) >= 2, by_queue  # a queue of several cases: the case filter narrows it
    for code, role, case_no in queues:
        caller = Caller(username="u", display_name="u", unit_code=code, unit_kind="department",
                        roles=frozenset({role}))
        for filters in ({}, {"overdue": True}, {"overdue": False}, {"case": case_no}):
            listed = list_tasks(rt, caller, "candidate", dict(filters, per_page=100))
            assert listed["total"] == len(listed["items"]), (code, role, filters)
            assert all(item["case"]["case_no"] == case_no for item in listed["items"]) or "case" not in filters

    # Likewise the supervision records (counted alone unless the case filter reads the case): a month on,
    # the new cases' steps are red too.
    clock.advance(days=30)
    TimerService(rt, "sim").run_until_idle()
    supervisor = Caller(username="s", display_name="s", unit_code="centre", unit_kind="supervision_centre",
                        roles=frozenset({"supervisor"}))
    with rt.db.read() as session:
        records = session.execute(select(Case.case_no).join(Supervision, Supervision.case_id == Case.id)).scalars().all()
    assert len(set(records)) >= 2, records  # records of several cases: the case filter narrows them
    for filters in ({}, {"status": "all"}, {"status": "closed"}, {"status": "all", "case": records[0]}):
        listed = list_supervisions(rt, supervisor, dict(filters, per_page=100))
        assert listed["total"] == len(listed["items"]) <= len(records), filters
    assert list_supervisions(rt, supervisor, {"status": "all", "per_page": 100})["total"] == len(records)
