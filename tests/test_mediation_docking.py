"""Mediation docking (processes/mediation_docking.bpmn) started on its own: medical and traffic bodies,
agreement, failure and return, the body's own clock going red, replay and audit verify."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from engine.errors import InvalidInput
from engine.services import audit, cases
from engine.services.mediation import hand_to_mediation, mediation_record
from engine.store.models import Case
from engine.store.timer_models import Supervision
from timers import TimerService

SH = ZoneInfo("Asia/Shanghai")
COMMUNITY = "XL-XLJD-YJP"


def local(y, m, d, h=17, mi=30):
    return datetime(y, m, d, h, mi, tzinfo=SH).astimezone(timezone.utc)


def hand(rt, body, category="medical", **extra):
    form = {"mediation_body": body, "title": "术后感染赔偿纠纷", "description": "患者家属要求医院赔偿。",
            "category": category, "community": COMMUNITY, "handing_unit": "YC-WJW", **extra}
    return hand_to_mediation(rt, form, "wjw_handler")


def open_task(case):
    assert len(case["open_tasks"]) == 1, case["open_tasks"]
    return case["open_tasks"][0]


def do(rt, case, element, **data):
    task = open_task(case)
    assert task["element"] == element, task
    return cases.complete_task(rt, task["id"], data, "mediator")


def session(rt, case, result, **extra):
    form = {"session_date": "2025-03-04", "participants": "患者家属、医院代表", "session_notes": "双方陈述",
            "session_result": result, **extra}
    return do(rt, case, "mediation_session", **form)


TEAM = {"doctor": "李医生", "lawyer": "王律师", "mediator": "赵调解员"}


def verified(rt, case_no):
    result = audit.verify_cases(rt, [case_no])
    assert result == {"checked": 1, "failed": 0, "results": []}
    replay = audit.replay_case(rt, case_no)
    assert replay["consistent"] is True, replay


def test_medical_agreement_with_judicial_confirmation(rt, clock):
    case = hand(rt, "YC-YTW")
    task = open_task(case)
    assert (task["element"], task["unit"], task["role"]) == ("accept_mediation", "YC-YTW", "handler")
    case = do(rt, case, "accept_mediation", acceptance="accept")
    task = open_task(case)
    # The medical committee's own limit: 22 working days from acceptance (Mon 2025-03-03) -> Wed 2 April.
    assert task["element"] == "mediation_session" and task["due_at"] == local(2025, 4, 2).isoformat()
    before = cases.case_events(rt, case["case_no"])
    with pytest.raises(InvalidInput) as err:  # the 1 doctor + 1 lawyer + 1 mediator team sits on every session
        session(rt, case, "continue", doctor="李医生")
    assert set(err.value.errors) == {"lawyer", "mediator"}
    assert cases.case_events(rt, case["case_no"]) == before
    case = session(rt, case, "continue", **TEAM)
    case = session(rt, case, "agreement", **TEAM)
    case = do(rt, case, "record_agreement", agreement_text="医院赔偿5万元", agreement_amount=50000,
              judicial_confirmation=True)
    task = open_task(case)
    assert (task["element"], task["unit"]) == ("judicial_confirm", "YC-ZY-SDS")  # the court nearest the body
    case = do(rt, case, "judicial_confirm", confirmation="confirmed", ruling_no="(2025)鄂0502民特1号")
    assert case["status"] == "closed"
    out = mediation_record(rt, case["case_no"])
    assert out["mediation_outcome"] == "agreement" and out["agreement_amount"] == 50000
    assert out["judicial_confirmation"] is True and out["court_body"] == "YC-ZY-SDS"
    assert [s["result"] for s in out["mediation_sessions"]] == ["continue", "agreement"]
    assert all(s["team"] == TEAM for s in out["mediation_sessions"])
    verified(rt, case["case_no"])


def test_traffic_four_in_one_outcomes(rt, clock):
    case = hand(rt, "YC-JTTJ", category="traffic", title="追尾事故赔偿")
    case = do(rt, case, "accept_mediation", acceptance="accept")
    with pytest.raises(InvalidInput) as err:  # the centre says which of its four channels settled it
        session(rt, case, "agreement")
    assert set(err.value.errors) == {"four_in_one"}
    with pytest.raises(InvalidInput) as err:
        session(rt, case, "arbitration", four_in_one="people")
    assert set(err.value.errors) == {"four_in_one"}
    case = session(rt, case, "agreement", four_in_one="administrative")
    case = do(rt, case, "record_agreement", agreement_text="保险公司赔付", agreement_amount=8000,
              judicial_confirmation=False)
    out = mediation_record(rt, case["case_no"])
    assert (out["mediation_outcome"], out["agreement_amount"], out["judicial_confirmation"]) == ("agreement", 8000, False)
    assert out["mediation_sessions"][0]["four_in_one"] == "administrative"

    other = hand(rt, "YC-JTTJ", category="traffic", title="保险理赔争议")
    other = do(rt, other, "accept_mediation", acceptance="accept")
    other = session(rt, other, "arbitration", four_in_one="arbitration")
    assert other["status"] == "closed"
    assert mediation_record(rt, other["case_no"])["mediation_outcome"] == "arbitration"
    third = hand(rt, "YC-JTTJ", category="traffic", title="伤残等级争议")
    third = do(rt, third, "accept_mediation", acceptance="accept")
    third = session(rt, third, "litigation", four_in_one="judicial")
    assert mediation_record(rt, third["case_no"])["mediation_outcome"] == "litigation"
    for no in (case["case_no"], other["case_no"], third["case_no"]):
        verified(rt, no)


def test_failure_and_return_to_the_handing_unit(rt, clock):
    declined = hand(rt, "YC-YTW")
    declined = do(rt, declined, "accept_mediation", acceptance="decline", decline_reason="已起诉至法院")
    out = mediation_record(rt, declined["case_no"])
    assert (out["mediation_outcome"], out["mediation_failure"]) == ("failure", "declined")
    failed = hand(rt, "XL-XLJD-TWH", category="property", title="物业费纠纷")
    failed = do(rt, failed, "accept_mediation", acceptance="accept")
    failed = session(rt, failed, "continue")
    failed = session(rt, failed, "failure")
    out = mediation_record(rt, failed["case_no"])
    assert (out["mediation_outcome"], out["mediation_failure"], len(out["mediation_sessions"])) == \
        ("failure", "failure", 2)
    assert out["agreement_amount"] is None and out["judicial_confirmation"] is False
    verified(rt, declined["case_no"])
    verified(rt, failed["case_no"])


def test_the_session_cap_ends_a_mediation_that_never_concludes(rt, clock):
    cap = rt.tables.time_limits["rework"]["max_mediation_sessions"]
    case = hand(rt, "XL-XLJD-PCS", category="property")
    case = do(rt, case, "accept_mediation", acceptance="accept")
    for _ in range(cap):
        case = session(rt, case, "continue")
    assert case["status"] == "closed"
    out = mediation_record(rt, case["case_no"])
    assert (out["mediation_outcome"], out["mediation_failure"], len(out["mediation_sessions"])) == \
        ("failure", "session_cap", cap)


def test_overdue_mediation_goes_red_and_is_supervised(rt, clock):
    case = hand(rt, "YC-YTW")
    case = do(rt, case, "accept_mediation", acceptance="accept")
    case = session(rt, case, "continue", **TEAM)  # a second session: the clock still runs from acceptance
    assert open_task(case)["due_at"] == local(2025, 4, 2).isoformat()
    clock.set(local(2025, 4, 3, 9, 0))
    TimerService(rt, "test-worker").run_until_idle()
    case = cases.get_case(rt, case["case_no"])
    task = open_task(case)
    assert task["element"] == "mediation_session" and task["light"] == "red"
    with rt.db.read() as s:
        records = [(r.step, r.unit_code, r.status) for r in s.scalars(select(Supervision))]
    assert records == [("mediation_session", "YC-YTW", "open")]
    verified(rt, case["case_no"])


def test_a_unit_that_is_no_mediation_body_is_refused(rt, clock):
    with pytest.raises(InvalidInput) as err:
        hand(rt, "YC-CGJ", title="")
    assert set(err.value.errors) == {"mediation_body", "title"}
    with rt.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 0


def test_called_from_a_category_procedure_through_a_call_activity(rt, clock):
    from engine.services.processes import deploy_paths
    from engine.services.procedures import start_procedure

    deploy_paths(rt, [Path(__file__).parent / "fixtures" / "docking_caller.bpmn",
                      rt.processes_dir / "mediation_docking.bpmn"], "tests")
    record = {"title": "医疗纠纷", "description": "转医调委", "category": "medical", "channel": "walk_in",
              "community": COMMUNITY, "routed_unit": "YC-WJW"}
    case = start_procedure(rt, "docking_caller", record, {"category": "medical", "community": COMMUNITY,
                                                          "routed_unit": "YC-WJW", "mediation_body": "YC-YTW"},
                           "wjw_handler")
    task = open_task(case)
    assert (task["element"], task["unit"]) == ("accept_mediation", "YC-YTW")  # inside the called procedure
    case = do(rt, case, "accept_mediation", acceptance="accept")
    case = session(rt, case, "agreement", **TEAM)
    case = do(rt, case, "record_agreement", agreement_text="赔偿3万元", agreement_amount=30000,
              judicial_confirmation=False)
    task = open_task(case)  # back in the caller, at the responsible unit, with the docking's outputs
    assert (task["element"], task["unit"]) == ("after_docking", "YC-WJW")
    with rt.db.read() as s:
        from engine.core.operation import CaseOperation

        row = s.scalar(select(Case))
        data = CaseOperation(rt, s, row, "t", rt.definitions.get(s, row.definition_id)).workflow_data()
    assert (data["mediation_outcome"], data["agreement_amount"], len(data["mediation_sessions"])) == \
        ("agreement", 30000, 1)
    verified(rt, case["case_no"])
