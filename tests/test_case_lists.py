"""The case lists' overdue filter at scale: `Case.open_due_at`, the earliest deadline of a case's open steps,
kept by the engine in every operation, always equals what the task rows say, and the filter selects exactly
the cases with a red open step (the rule of engine.rules.deadlines.light) as the clock moves."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from sqlalchemy import select

from engine.rules.access import Caller
from engine.services.search import list_cases
from engine.services.simulation import simulate
from engine.store.models import Case, CaseTask
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
