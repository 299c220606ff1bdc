"""Refusals, transfers and co-handled cases in the statistics and the monthly assessment.

The cases run through the real procedure; the handling events (`case_refused`, `case_transferred`,
`co_units_added`, `first_handling_fixed`: the contract of the handling issue) are appended to
their event log through the ledger, as the handling services record them, and the figures are
then counted from that log.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from engine.rules.access import Caller
from engine.services import assessment, reports
from engine.services.statistics import compute_statistics, period
from engine.store.ledger import append_events
from engine.store.models import Case
from tests.support import Driver

SH = ZoneInfo("Asia/Shanghai")
STREET_USER = Caller("xljd_leader", "街道领导", "XL-XLJD", "street", frozenset({"leader"}))


def at(y, m, d, h=9):
    return datetime(y, m, d, h, tzinfo=SH).astimezone(timezone.utc)


def record(rt, case_no: str, type_: str, payload: dict, when: datetime, element: str = "sign_for") -> None:
    """Append one handling event to the case's log, chained like every other event."""
    with rt.db.write() as session:
        case = session.scalar(select(Case).where(Case.case_no == case_no))
        case.last_seq = (case.last_seq or 0) + 1
        session.flush()
        append_events(session, case, [dict(seq=case.last_seq, type=type_, at=when, actor="handler", task_id=None,
                                           element=element, lane=None, definition_version=1, payload=payload)])


def march(rt, user=None, **kw):
    return compute_statistics(rt, user, period(rt, date(2025, 3, 1), date(2025, 3, 31)), **kw)


@pytest.fixture
def handled(rt, clock):
    """Three March cases: one refused then transferred, one co-handled with a co-unit's refusal, one plain."""
    refused = Driver.start(rt).happy_path()["case_no"]
    joint = Driver.start(rt, community="XL-XLJD-TJY").happy_path()["case_no"]
    plain = Driver.start(rt).happy_path()["case_no"]
    record(rt, refused, "case_refused", {"unit": "YC-CGJ", "element": "sign_for", "reason": "不属本单位职责",
                                         "suggested_unit": "YC-ZJJ", "co_handler": False}, at(2025, 3, 5))
    record(rt, refused, "case_transferred", {"from_unit": "YC-CGJ", "to_unit": "YC-ZJJ", "transfers": 1},
           at(2025, 3, 5, 10))
    record(rt, refused, "first_handling_fixed", {"unit": "YC-ZJJ", "transfers": 1}, at(2025, 3, 5, 11))
    record(rt, joint, "co_units_added", {"lead_unit": "YC-CGJ", "units": ["YC-ZJJ"]}, at(2025, 3, 6))
    record(rt, joint, "case_refused", {"unit": "YC-ZJJ", "element": "sign_for", "reason": "协办事项不清",
                                       "suggested_unit": None, "co_handler": True}, at(2025, 3, 6, 10))
    # April: outside the month, counted in April only
    record(rt, plain, "case_refused", {"unit": "YC-CGJ", "element": "sign_for", "reason": "迟到的退回",
                                       "suggested_unit": None, "co_handler": False}, at(2025, 4, 2))
    record(rt, plain, "case_transferred", {"from_unit": "YC-CGJ", "to_unit": "YC-ZJJ", "transfers": 1},
           at(2025, 4, 2, 10))
    clock.set(at(2025, 4, 10))
    return {"refused": refused, "joint": joint, "plain": plain}


def test_the_totals_count_the_events_of_the_period(rt, handled):
    total = march(rt)["total"]
    assert (total["accepted"], total["refusals"], total["transfers"], total["co_handled"]) == (3, 2, 1, 1)
    april = compute_statistics(rt, None, period(rt, date(2025, 4, 1), date(2025, 4, 30)))["total"]
    assert (april["accepted"], april["refusals"], april["transfers"], april["co_handled"]) == (0, 1, 1, 0)
    quarter = compute_statistics(rt, None, period(rt, date(2025, 3, 1), date(2025, 4, 30)))["total"]
    assert (quarter["refusals"], quarter["transfers"]) == (3, 2)


def test_by_unit_refused_by_transferred_from_and_each_co_unit(rt, handled):
    groups = {g["key"]: g for g in march(rt, group_by="unit")["groups"]}
    cgj, zjj = groups["YC-CGJ"], groups["YC-ZJJ"]
    assert (cgj["refusals"], cgj["transfers"]) == (1, 1)       # refused by, transferred from
    assert (zjj["refusals"], zjj["transfers"]) == (1, 0)       # refused as co-handler; received the transfer
    assert zjj["co_handled"] == 1 and zjj["accepted"] == 1     # the co-unit answers for the joint case
    assert cgj["co_handled"] == 1                               # ... and so does the lead unit
    assert (groups["YC"]["refusals"], groups["YC"]["transfers"], groups["YC"]["co_handled"]) == (2, 1, 1)
    assert groups["XL-XLJD-TJY"]["co_handled"] == 1 and groups["XL-XLJD-YJP"]["co_handled"] == 0
    assert groups["XL-XLJD-YJP"]["refusals"] == 0              # a community is not charged with a department's refusal
    by_category = {g["key"]: g for g in march(rt, group_by="category")["groups"]}
    assert by_category["urban_management"]["refusals"] == 2


def test_scope_a_street_sees_no_department_refusals(rt, handled):
    street = march(rt, user=STREET_USER)["total"]
    assert street["accepted"] == 3 and street["co_handled"] == 1
    assert street["refusals"] == 0 and street["transfers"] == 0
    assert march(rt, unit="YC-ZJJ")["total"]["refusals"] == 1


def test_the_assessment_deducts_refusals_with_the_cases_behind(rt, handled):
    assessment.deploy_rules(rt, "tests")
    units = {u["unit"]: u for u in assessment.monthly_assessment(rt, "2025-03")["units"]}
    lost = {d["figure"]: d for d in units["YC-CGJ"]["deductions"] if d["points"]}
    assert set(lost) == {"refusals"} and lost["refusals"]["cases"] == [handled["refused"]]
    rules = assessment.parse_rules((rt.processes_dir / "assessment.toml").read_text(encoding="utf-8"))
    per = next(d["points"] for d in rules["deductions"] if d["figure"] == "refusals")
    assert units["YC-CGJ"]["score"] == 100 - per and units["YC-ZJJ"]["score"] == 100 - per
    assert units["YC-CGJ"]["figures"]["refusals"] == 1 and units["YC-ZJJ"]["figures"]["co_handled"] == 1


def test_the_workbook_has_the_handling_columns(rt, handled):
    import io

    import openpyxl

    assessment.deploy_rules(rt, "tests")
    wb = openpyxl.load_workbook(io.BytesIO(reports.monthly_workbook(rt, None, "2025-03")))
    cover = {wb["封面"].cell(row=r, column=1).value: wb["封面"].cell(row=r, column=2).value for r in range(5, 20)}
    assert (cover["拒收退回"], cover["转办"], cover["协办案件"]) == (2, 1, 1)
    ws = wb["按单位"]
    header = [c.value for c in ws[1]]
    rows = {r[0]: dict(zip(header, r)) for r in ws.iter_rows(min_row=2, values_only=True) if r[0]}
    assert (rows["YC-CGJ"]["拒收退回"], rows["YC-CGJ"]["转办"], rows["YC-ZJJ"]["协办"]) == (1, 1, 1)


def test_the_indexed_selection_equals_a_scan_of_every_row(rt, clock):
    """The statistics read a period's steps, backlog and supervision records through index ranges; on a
    simulated month, what they select is exactly what a scan of every row selects."""
    from engine.services.simulation import simulate
    from engine.services.statistics import load_facts
    from engine.store.case_facts import micros
    from engine.store.models import CaseTask
    from engine.store.timer_models import Supervision
    from timers import TimerService

    simulate(rt, date(2025, 3, 1), date(2025, 3, 31), 5, TimerService(rt, "sim").run_until_idle, cases_total=60)
    clock.set(at(2025, 4, 10))
    p = period(rt, date(2025, 3, 10), date(2025, 3, 20))
    start, as_of = p.start, p.as_of()
    within = lambda t: t is not None and start <= t < as_of  # noqa: E731
    with rt.db.read() as session:
        facts = load_facts(rt, session, p)
        numbers = dict(session.execute(select(Case.id, Case.case_no)).all())
        tasks = session.execute(select(CaseTask.case_id, CaseTask.bpmn_id, CaseTask.created_at, CaseTask.ended_at,
                                       CaseTask.due_at, CaseTask.warn_at)).all()
        cases = session.execute(select(Case.case_no, Case.created_at, Case.closed_at)).all()
        records = session.execute(select(Supervision.case_id, Supervision.opened_at, Supervision.closed_at)).all()
    steps = sorted((numbers[t.case_id], t.bpmn_id, micros(t.created_at), micros(t.due_at) if t.due_at else None)
                   for t in tasks if t.created_at < as_of
                   and (within(t.ended_at) or within(t.due_at) or within(t.warn_at)))
    # the instants as the database computed them (epoch_micros), exactly as Python does
    assert steps and sorted((s.case_no, s.step, s.created, s.due) for s in facts.steps) == steps
    assert len(steps) < len(tasks)                      # the period leaves steps out: the ranges are exercised
    backlog = sorted(c.case_no for c in cases if c.created_at < as_of and (c.closed_at is None or c.closed_at >= as_of))
    assert backlog and sorted(c.case_no for c in facts.backlog) == backlog
    touched = sorted(numbers[r.case_id] for r in records if within(r.opened_at) or within(r.closed_at))
    assert sorted(r["case_no"] for r in facts.supervision) == touched
