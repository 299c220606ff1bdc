"""Every category's own procedure (processes/dispute_<category>.bpmn): its main path and its special steps.

Each case is driven from intake to closing by completing whatever step is open with that step's
form (`FORMS`); the steps it went through are compared with the category's expected path, and
the case's log must replay to the stored state (`audit verify`)."""
from __future__ import annotations

import pytest

from engine.services import audit, cases
from engine.services.processes import list_processes
from tests.support import intake

SIGN = {"decision": "accept", "responsible_section": "承办科", "responsible_person": "李四"}
FORMS = {
    "mediate": {"mediation_result": "unresolved"},
    "sign_for": SIGN,
    "co_sign_for": SIGN,
    "handle": {"result": "已依法处理", "measures": "约谈双方"},
    "approve": {"decision": "approve"},
    "evaluate": {"rating": "satisfied"},
    "inspect": {"inspection_findings": "排污口超标排放", "violation": "yes"},
    "rectification_notice": {"notice_no": "宜环改〔2025〕12号", "rectification_items": "停产整治排污口",
                             "rectification_deadline": "2025-03-20"},
    "reinspect": {"reinspection_result": "passed", "reinspection_note": "排放达标"},
    "eligibility_check": {"eligible": "yes", "eligibility_basis": "低保边缘户，符合临时救助条件"},
    "legal_review": {"legal_opinion": "compliant", "legal_basis": "《国有土地上房屋征收与补偿条例》"},
    "accept_mediation": {"acceptance": "accept"},
    "mediation_session": {"session_date": "2025-03-04", "participants": "双方当事人", "session_notes": "达成一致",
                          "session_result": "agreement"},
    "record_agreement": {"agreement_text": "双方自愿达成调解协议", "judicial_confirmation": False},
    "convene_reception": {"co_units": ["YC-RSJ"], "lawyer_name": "王律师", "lawyer_org": "某律师事务所",
                          "reception_date": "2025-03-05"},
    "joint_reception": {"participants": "信访局、人社局、律师", "conclusion": "落实补缴", "measures": "人社局办理"},
}
EXTRA = {  # what a step needs at one kind of mediation body
    ("medical", "mediation_session"): {"doctor": "张医生", "lawyer": "李律师", "mediator": "王调解员"},
    ("traffic", "mediation_session"): {"four_in_one": "people"},
}
UNIT_PART = ["sign_for", "handle", "approve"]
DOCKED = ["accept_mediation", "mediation_session", "record_agreement"]
PATHS = {
    "civil_affairs": ["sign_for", "eligibility_check", "handle", "approve"],
    "urban_management": UNIT_PART,
    "demolition": UNIT_PART + ["legal_review"],
    "property": DOCKED,
    "environment": ["sign_for", "inspect", "rectification_notice", "handle", "approve", "reinspect"],
    "labour": UNIT_PART,
    "medical": DOCKED,
    "traffic": DOCKED,
    "market": UNIT_PART,
    "family": DOCKED,
    "neighbour": DOCKED,
    "enterprise": UNIT_PART + ["legal_review"],
    "petition": ["sign_for", "convene_reception", "co_sign_for", "joint_reception", "approve"],
}


def drive(rt, category: str, forms: dict | None = None) -> tuple[dict, list[str]]:
    case = cases.start_case(rt, intake(category=category), "acceptor")
    path = []
    for _ in range(40):
        if not case["open_tasks"]:
            return case, path
        task = case["open_tasks"][0]
        element = task["element"]
        path.append(element)
        data = {**FORMS[element], **EXTRA.get((category, element), {}), **(forms or {}).get(element, {})}
        case = cases.complete_task(rt, task["id"], data, "someone")
    raise AssertionError(f"{category}: no end after {path}")


def test_every_category_names_its_own_deployed_procedure(rt):
    deployed = {p["process_id"] for p in list_processes(rt)}
    assert {route.process for route in rt.tables.routes.values()} <= deployed
    assert len({route.process for route in rt.tables.routes.values()}) == len(rt.tables.routes) == 13
    shared = {"community_mediation", "unit_sign_for", "unit_handling", "co_handling", "escalation_ladder",
              "citizen_evaluation", "mediation_docking"}
    assert shared <= deployed


@pytest.mark.parametrize("category", sorted(PATHS))
def test_the_main_path_and_special_steps_of_each_category(rt, category):
    case, path = drive(rt, category)
    assert path == ["mediate", *PATHS[category], "evaluate"], path
    assert case["status"] == "closed" and case["rating"] == "satisfied"
    assert audit.verify_cases(rt, [case["case_no"]]) == {"checked": 1, "failed": 0, "results": []}


@pytest.mark.parametrize("category, forms, unit", [
    ("medical", {"mediation_session": {"session_result": "failure"}}, "YC-WJW"),
    # the traffic centre's judicial channel ends in litigation: back to the police
    ("traffic", {"mediation_session": {"session_result": "litigation", "four_in_one": "judicial"}}, "YC-GAJ"),
    ("neighbour", {"accept_mediation": {"acceptance": "decline", "decline_reason": "当事人拒绝调解"}}, "XL-XLJD"),
])
def test_a_failed_docking_comes_back_to_the_unit(rt, category, forms, unit):
    case, path = drive(rt, category, forms)
    docked = ["accept_mediation"] if "accept_mediation" in forms else ["accept_mediation", "mediation_session"]
    assert path == ["mediate", *docked, *UNIT_PART, "evaluate"], path
    assert case["routed_unit"] == unit and case["first_handling_unit"] == unit
    assert audit.verify_cases(rt, [case["case_no"]])["failed"] == 0


def test_environment_rectification_that_fails_reinspection_is_noticed_again(rt):
    results = iter(["failed", "passed"])
    case = cases.start_case(rt, intake(category="environment"), "acceptor")
    path = []
    while case["open_tasks"]:
        task = case["open_tasks"][0]
        path.append(task["element"])
        data = dict(FORMS[task["element"]])
        if task["element"] == "reinspect":
            data["reinspection_result"] = next(results)
        case = cases.complete_task(rt, task["id"], data, "someone")
    assert path == ["mediate", "sign_for", "inspect", "rectification_notice", "handle", "approve", "reinspect",
                    "rectification_notice", "handle", "approve", "reinspect", "evaluate"]
    assert "复查" in case["reply"]["text"]


def test_an_ineligible_relief_request_is_answered_after_the_leader_signs(rt):
    case, path = drive(rt, "civil_affairs", {"eligibility_check": {"eligible": "no",
                                                                   "eligibility_basis": "家庭收入超过标准"}})
    assert path == ["mediate", "sign_for", "eligibility_check", "approve", "evaluate"]
    assert "不符合救助条件" in case["reply"]["text"]


def test_a_running_case_stays_on_the_versions_of_the_category_and_shared_procedures_it_started_on(rt):
    from engine.services.processes import deploy_sources, diff_versions

    old = cases.start_case(rt, intake(), "acceptor")
    for element in ("mediate", "sign_for"):
        old = cases.complete_task(rt, old["open_tasks"][0]["id"], FORMS[element], "someone")
    shared = (rt.processes_dir / "unit_handling.bpmn").read_bytes().replace(
        'name="分线处理"'.encode(), 'name="分线办理"'.encode())
    deployed = deploy_sources(rt, {"unit_handling.bpmn": shared}, "designer")
    # The shared sub-procedure, and every procedure calling it, have a new version.
    assert (deployed[0]["process_id"], deployed[0]["version"]) == ("unit_handling", 2)
    assert {d["process_id"] for d in deployed[1:]} == {r.process for r in rt.tables.routes.values()}
    category = (rt.processes_dir / "dispute_urban_management.bpmn").read_bytes().replace(
        'name="按类别分派"'.encode(), 'name="按类别分派（派单）"'.encode())
    [mine] = deploy_sources(rt, {"dispute_urban_management.bpmn": category}, "designer")
    assert (mine["version"], mine["calls"]["unit_handling"]) == (3, 2)

    new = cases.start_case(rt, intake(), "acceptor")
    for element in ("mediate", "sign_for"):
        new = cases.complete_task(rt, new["open_tasks"][0]["id"], FORMS[element], "someone")
    assert old["open_tasks"][0]["name"] == "分线处理" and new["open_tasks"][0]["name"] == "分线办理"
    for case in (old, new):
        while case["open_tasks"]:
            element = case["open_tasks"][0]["element"]
            case = cases.complete_task(rt, case["open_tasks"][0]["id"], FORMS[element], "someone")
        assert case["status"] == "closed"
    assert audit.verify_cases(rt, [old["case_no"], new["case_no"]])["failed"] == 0

    diff = diff_versions(rt, "dispute_urban_management", 1, 3)
    assert [c["field"] for e in diff["changed"] for c in e["changes"]] == ["name"]
    [called] = diff["calls"]
    assert (called["process_id"], called["from"], called["to"]) == ("unit_handling", 1, 2)
    assert [e["element"] for e in called["changed"]] == ["handle"]


def test_an_overdue_docked_mediation_goes_red_for_the_mediation_body(rt, clock):
    from datetime import datetime, timedelta

    from sqlalchemy import select

    from engine.store.timer_models import Supervision
    from timers import TimerService

    case = cases.start_case(rt, intake(category="medical"), "acceptor")
    for element in ("mediate", "accept_mediation"):
        case = cases.complete_task(rt, case["open_tasks"][0]["id"], FORMS[element], "someone")
    session = case["open_tasks"][0]
    assert (session["element"], session["unit"]) == ("mediation_session", "YC-YTW")
    clock.set(datetime.fromisoformat(session["due_at"]) + timedelta(minutes=1))
    TimerService(rt, "test-worker").run_until_idle()
    with rt.db.read() as s:
        assert [(r.step, r.unit_code) for r in s.scalars(select(Supervision))] == [("mediation_session", "YC-YTW")]
    assert cases.get_case(rt, case["case_no"])["open_tasks"][0]["light"] == "red"
    assert audit.verify_cases(rt, [case["case_no"]])["failed"] == 0


def test_a_handling_unit_hands_the_case_to_a_mediation_body_and_the_agreement_is_signed(rt):
    from engine.errors import InvalidInput

    case = cases.start_case(rt, intake(), "acceptor")
    for element in ("mediate", "sign_for"):
        case = cases.complete_task(rt, case["open_tasks"][0]["id"], FORMS[element], "someone")
    handle = case["open_tasks"][0]["id"]
    with pytest.raises(InvalidInput) as refused:  # not a mediation body: nothing changes
        cases.complete_task(rt, handle, {**FORMS["handle"], "mediation_body": "YC-GAJ"}, "someone")
    assert "mediation_body" in refused.value.errors
    case = cases.complete_task(rt, handle, {"result": "移交人民调解", "measures": "移交",
                                            "mediation_body": "XL-XLJD-TWH"}, "someone")
    assert (case["open_tasks"][0]["element"], case["open_tasks"][0]["unit"]) == ("accept_mediation", "XL-XLJD-TWH")
    path = ["handle"]
    while case["open_tasks"]:
        element = case["open_tasks"][0]["element"]
        path.append(element)
        case = cases.complete_task(rt, case["open_tasks"][0]["id"], FORMS[element], "someone")
    assert path == ["handle", *DOCKED, "approve", "evaluate"]
    assert case["reply"]["text"] == "双方自愿达成调解协议" and case["routed_unit"] == "YC-CGJ"
    assert audit.verify_cases(rt, [case["case_no"]])["failed"] == 0


def test_a_failed_hand_off_comes_back_to_the_handler(rt):
    case = cases.start_case(rt, intake(), "acceptor")
    for element in ("mediate", "sign_for"):
        case = cases.complete_task(rt, case["open_tasks"][0]["id"], FORMS[element], "someone")
    case = cases.complete_task(rt, case["open_tasks"][0]["id"], {**FORMS["handle"], "mediation_body": "XL-XLJD-TWH"},
                               "someone")
    case = cases.complete_task(rt, case["open_tasks"][0]["id"], {"acceptance": "decline",
                                                                 "decline_reason": "不属于人民调解范围"}, "someone")
    assert case["open_tasks"][0]["element"] == "handle"
    for element in ("handle", "approve", "evaluate"):
        case = cases.complete_task(rt, case["open_tasks"][0]["id"], FORMS[element], "someone")
    assert case["status"] == "closed" and case["reply"]["text"] == "已依法处理"
