"""The stability risk assessment (稳评): started by the owner unit, nine required sections, opinions of the
place in parallel each with its own deadline, the three decisions, measures tracked, and the approval gate."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from engine.errors import InvalidForm, InvalidInput
from engine.services import audit, cases, stability
from engine.store.timer_models import Supervision
from tests.support import intake
from timers import TimerService

SH = ZoneInfo("Asia/Shanghai")
NINE = ("basic_facts", "work_plan", "assessment_team", "project_filing", "contingency_plan", "risk_forecast",
        "stakeholder_survey", "mitigation_measures", "assessment_conclusion")
PLACE = ["XL-ZZB", "XL-XLJD", "XL-XLJD-YJP"]  # district coordination office, street, community


def local(y, m, d, h=17, mi=30):
    return datetime(y, m, d, h, mi, tzinfo=SH).astimezone(timezone.utc)


def start(rt, **extra):
    form = {"title": "云集路棚户区改造", "description": "拆迁安置 320 户", "project_kind": "demolition",
            "community": "XL-XLJD-YJP", "owner_unit": "YC-ZJJ",
            "assessor": {"name": "湖北某工程咨询有限公司", "credit_code": "91420500MA4XXXXX0"}, **extra}
    return stability.start_assessment(rt, form, "zjj_handler")


def tasks(case, element=None):
    return [t for t in case["open_tasks"] if element is None or t["element"] == element]


def do(rt, case, element, unit=None, **data):
    task = next(t for t in tasks(case, element) if unit is None or t["unit"] == unit)
    return cases.complete_task(rt, task["id"], data, "someone")


def through_opinions(rt, case):
    case = do(rt, case, "file_report", **{k: f"{k} 内容" for k in NINE})
    for unit in PLACE:
        case = do(rt, case, "give_opinion", unit, stance="support", opinion_text="同意")
    return do(rt, case, "hearing", hearing_kind="hearing_and_survey", respondents=320, support_percent=93,
              hearing_summary="听证会一次，问卷 320 份")


def verified(rt, case_no):
    assert audit.verify_cases(rt, [case_no]) == {"checked": 1, "failed": 0, "results": []}
    assert audit.replay_case(rt, case_no)["consistent"] is True


def test_nine_elements_are_required_sections(rt, clock):
    case = start(rt)
    task = tasks(case)[0]
    assert (task["element"], task["unit"], case["status"]) == ("file_report", "YC-ZJJ", "assessing")
    with pytest.raises(InvalidForm) as err:
        do(rt, case, "file_report", **{k: "x" for k in NINE[:-2]})
    assert set(err.value.errors) == set(NINE[-2:])


def test_proceed_then_the_gate_lets_the_project_be_approved(rt, clock):
    case = start(rt)
    with pytest.raises(InvalidInput) as err:  # the gate: no approval before the assessment ends
        stability.approve_project(rt, case["case_no"], "zjj_leader")
    assert set(err.value.errors) == {"assessment"}
    case = through_opinions(rt, case)
    case = do(rt, case, "review", risk_level="low", decision="proceed")
    assert case["status"] == "closed"
    view = stability.assessment_view(rt, case["case_no"])
    assert [o["unit"] for o in sorted(view["opinions"], key=lambda o: PLACE.index(o["unit"]))] == PLACE
    assert view["assessor"]["name"] == "湖北某工程咨询有限公司" and view["assessment_finished"] is True
    out = stability.approve_project(rt, case["case_no"], "zjj_leader")
    assert out["approved"] is True and out["decision"] == "proceed"
    assert stability.assessment_view(rt, case["case_no"])["approved"] is True
    verified(rt, case["case_no"])


def test_stop_refuses_approval(rt, clock):
    case = through_opinions(rt, start(rt))
    with pytest.raises(InvalidInput) as err:  # a high risk may not simply proceed
        do(rt, case, "review", risk_level="high", decision="proceed")
    assert set(err.value.errors) == {"decision"}
    case = do(rt, case, "review", risk_level="high", decision="stop", review_note="群众反对强烈")
    assert case["status"] == "closed"
    with pytest.raises(InvalidInput) as err:
        stability.approve_project(rt, case["case_no"], "zjj_leader")
    assert set(err.value.errors) == {"assessment"} and "stop" in err.value.errors["assessment"][0]
    assert stability.assessment_view(rt, case["case_no"])["approved"] is False
    verified(rt, case["case_no"])


def test_proceed_with_measures_tracks_each_measure_to_completion(rt, clock):
    case = through_opinions(rt, start(rt))
    case = do(rt, case, "review", risk_level="medium", decision="proceed_with_measures",
              measures_text="公开补偿标准\n设立现场接待点")
    measures = tasks(case, "carry_out_measure")
    assert len(measures) == 2 and {t["unit"] for t in measures} == {"YC-ZJJ"}
    with pytest.raises(InvalidInput):  # measures still open: the assessment has not finished
        stability.approve_project(rt, case["case_no"], "zjj_leader")
    case = cases.complete_task(rt, measures[0]["id"], {"measure_result": "已公示"}, "zjj_handler")
    case = cases.complete_task(rt, measures[1]["id"], {"measure_result": "已设立"}, "zjj_handler")
    assert case["status"] == "closed"
    view = stability.assessment_view(rt, case["case_no"])
    assert sorted(m["text"] for m in view["measures_done"]) == ["公开补偿标准", "设立现场接待点"]
    assert stability.approve_project(rt, case["case_no"], "zjj_leader")["decision"] == "proceed_with_measures"
    verified(rt, case["case_no"])


def test_a_missing_opinion_goes_red_for_its_unit_only(rt, clock):
    case = do(rt, start(rt), "file_report", **{k: "x" for k in NINE})
    opinions = tasks(case, "give_opinion")
    assert sorted(t["unit"] for t in opinions) == sorted(PLACE)
    assert {t["due_at"] for t in opinions} == {local(2025, 3, 10).isoformat()}  # 5 working days each
    case = do(rt, case, "give_opinion", "XL-ZZB", stance="support", opinion_text="同意")
    case = do(rt, case, "give_opinion", "XL-XLJD", stance="support_with_conditions", opinion_text="做好安置")
    clock.set(local(2025, 3, 11, 9, 0))
    TimerService(rt, "test-worker").run_until_idle()
    case = cases.get_case(rt, case["case_no"])
    late = tasks(case, "give_opinion")
    assert [(t["unit"], t["light"]) for t in late] == [("XL-XLJD-YJP", "red")]
    with rt.db.read() as s:
        assert [(r.step, r.unit_code) for r in s.scalars(select(Supervision))] == [("give_opinion", "XL-XLJD-YJP")]
    case = do(rt, case, "give_opinion", "XL-XLJD-YJP", stance="oppose", opinion_text="居民意见大")
    assert tasks(case)[0]["element"] == "hearing"
    verified(rt, case["case_no"])


def test_an_owner_unit_starts_it_and_cases_reference_it(rt, clock):
    with pytest.raises(InvalidInput) as err:
        start(rt, owner_unit="XL-XLJD-YJP", project_kind="dam", assessor={})
    assert set(err.value.errors) == {"owner_unit", "project_kind", "assessor"}
    case = start(rt)
    demolition = cases.start_case(rt, intake(category="demolition", title="拆迁补偿争议"), "acceptor")
    other = cases.start_case(rt, intake(), "acceptor")
    stability.link_case(rt, case["case_no"], demolition["case_no"], "zjj_handler")
    with pytest.raises(InvalidInput) as err:
        stability.link_case(rt, case["case_no"], other["case_no"], "zjj_handler")
    assert set(err.value.errors) == {"case_no"}
    with pytest.raises(InvalidInput) as err:  # a dispute is no assessment
        stability.approve_project(rt, demolition["case_no"], "zjj_leader")
    assert set(err.value.errors) == {"assessment"}
    assert stability.assessment_view(rt, case["case_no"])["linked_cases"] == [demolition["case_no"]]
