"""The standard procedure end to end over HTTP, every step by the demo user whose role and unit it is.

一门受理 (the community registers) → 社区调解 → 签收 (the unit's work centre hands it to a
handler) → 办理 → 一笔审批 (the leader, once sending it back) → 统一回告 → 评价
(dissatisfied) → 监管中心 督办 → rework → 评价 (satisfied) → closed. Along the way
users of other roles and units try the step and are refused.
"""
from __future__ import annotations

from tests.api_support import PHONE


def _task(api, case_no):
    return api.open_task(case_no)


def _complete(api, task, user, status=200, **data):
    resp = api.post(f"/api/v1/tasks/{task['id']}/complete", user, {"data": data})
    assert resp.status_code == status, (user, task["element"], resp.get_json())
    return resp.get_json()


def test_the_standard_procedure_over_http(api):
    case = api.register("yjp_acceptor")
    case_no, tracking_code = case["case_no"], case["tracking_code"]
    assert case["status"] == "mediating"

    mediate = _task(api, case_no)
    _complete(api, mediate, "cgj_handler", 404, mediation_result="unresolved")    # not its case yet
    _complete(api, mediate, "yjp_grid", 403, mediation_result="unresolved")       # mediation is the acceptor's
    case = _complete(api, mediate, "yjp_acceptor", mediation_result="unresolved")
    assert case["status"] == "signing" and case["routed_unit"] == "YC-CGJ"

    sign_for = _task(api, case_no)
    assert [t["id"] for t in api.get("/api/v1/tasks", "cgj_dispatcher").get_json()["items"]] == [sign_for["id"]]
    assert api.post(f"/api/v1/tasks/{sign_for['id']}/delegate", "cgj_dispatcher",
                    {"username": "cgj_handler"}).status_code == 200
    assert [t["id"] for t in api.get("/api/v1/tasks?scope=mine", "cgj_handler").get_json()["items"]] == \
        [sign_for["id"]]
    _complete(api, sign_for, "cgj_handler2", 409, decision="accept", responsible_section="执法二科",
              responsible_person="cgj_handler2")
    _complete(api, sign_for, "cgj_leader", 403, decision="accept", responsible_section="执法一科",
              responsible_person="cgj_handler")
    # The responsible person is a handler of the unit: a leader, a stranger or another unit's user is refused.
    for person in ("cgj_leader", "李四", "gaj_handler"):
        body = _complete(api, sign_for, "cgj_handler", 422, decision="accept", responsible_section="执法一科",
                         responsible_person=person)
        assert "responsible_person" in body["errors"], body
    case = _complete(api, sign_for, "cgj_handler", decision="accept", responsible_section="执法一科",
                     responsible_person="cgj_handler2")
    assert case["status"] == "handling" and case["first_handling_unit"] == "YC-CGJ" and case["transfers"] == 0

    handle = _task(api, case_no)
    # The named handler holds the handling step: it is in their own list; the dispatcher may re-assign it.
    assert handle["assignee"] == "cgj_handler2" and handle["unit"] == "YC-CGJ"
    assert [t["id"] for t in api.get("/api/v1/tasks?scope=mine", "cgj_handler2").get_json()["items"]] == \
        [handle["id"]]
    assert api.post(f"/api/v1/tasks/{handle['id']}/delegate", "cgj_dispatcher",
                    {"username": "cgj_handler"}).status_code == 200
    assert api.post(f"/api/v1/tasks/{handle['id']}/claim", "cgj_handler").status_code == 200
    _complete(api, handle, "cgj_handler", result="初步处理", measures="电话沟通")

    approve = _task(api, case_no)
    assert approve["role"] == "leader"
    _complete(api, approve, "cgj_handler", 403, decision="approve")
    _complete(api, approve, "gaj_leader", 404, decision="approve")
    case = _complete(api, approve, "cgj_leader", decision="return", return_reason="未现场核实")
    assert case["status"] == "handling"

    handle = _task(api, case_no)  # back with the named handler
    assert handle["assignee"] == "cgj_handler2"
    _complete(api, handle, "cgj_handler", 409, result="已责令整改，漏水已修复", measures="现场查看，约谈双方")
    _complete(api, handle, "cgj_handler2", result="已责令整改，漏水已修复", measures="现场查看，约谈双方")
    case = _complete(api, _task(api, case_no), "cgj_leader", decision="approve")
    assert case["status"] == "evaluating" and case["reply"]["text"] == "已责令整改，漏水已修复"

    evaluate = _task(api, case_no)
    _complete(api, evaluate, "cgj_handler", 403, rating="satisfied")
    case = _complete(api, evaluate, "yjp_acceptor", rating="dissatisfied", rating_comment="漏水仍未解决")
    assert case["status"] == "reviewing"

    review = _task(api, case_no)
    assert review["unit"] == "YC-JGZX" and review["role"] == "supervisor"
    _complete(api, review, "auditor", 403, instructions="督办")
    _complete(api, review, "cgj_leader", 403, instructions="督办")
    case = _complete(api, review, "jgzx_supervisor", instructions="督办：三日内现场整改")
    assert case["status"] == "handling"

    _complete(api, _task(api, case_no), "cgj_handler2", result="返工：更换管道", measures="现场施工")
    _complete(api, _task(api, case_no), "cgj_leader", decision="approve")
    case = _complete(api, _task(api, case_no), "yjp_acceptor", rating="satisfied")
    assert case["status"] == "closed" and case["closed_at"] and case["open_tasks"] == []
    assert case["rating"] == "satisfied"

    events = api.get(f"/api/v1/cases/{case_no}/events", "auditor").get_json()
    completed = [(e["element"], e["actor"]) for e in events if e["type"] == "task_completed"]
    assert completed == [
        ("mediate", "yjp_acceptor"), ("sign_for", "cgj_handler"), ("handle", "cgj_handler"),
        ("approve", "cgj_leader"), ("handle", "cgj_handler2"), ("approve", "cgj_leader"),
        ("evaluate", "yjp_acceptor"), ("review", "jgzx_supervisor"), ("handle", "cgj_handler2"),
        ("approve", "cgj_leader"), ("evaluate", "yjp_acceptor"),
    ]
    assert events[-1]["type"] == "case_completed"
    tracked = api.client.get(f"/api/v1/track/{tracking_code}").get_json()
    assert tracked["status"] == "closed"


def test_resolved_by_the_community_over_http(api):
    case_no = api.register("yjp_grid", channel="grid_worker")["case_no"]
    case = _complete(api, _task(api, case_no), "yjp_acceptor2", mediation_result="resolved",
                     mediation_note="双方达成调解协议")
    assert case["status"] == "evaluating" and case["routed_unit"] is None
    case = _complete(api, _task(api, case_no), "yjp_acceptor", rating="basically_satisfied")
    assert case["status"] == "closed"


def test_a_neighbour_dispute_goes_to_the_street_office(api):
    case_no = api.register("tjy_acceptor", category="neighbour", community="XL-XLJD-TJY")["case_no"]
    case = _complete(api, _task(api, case_no), "tjy_acceptor", mediation_result="unresolved")
    assert case["routed_unit"] == "XL-XLJD"
    # People's mediation first: the street's mediation committee declines, and the street office handles it.
    accept = _task(api, case_no)
    assert (accept["element"], accept["unit"]) == ("accept_mediation", "XL-XLJD-TWH")
    _complete(api, accept, "xltwh_mediator", acceptance="decline", decline_reason="当事人不同意调解")
    _complete(api, _task(api, case_no), "cgj_handler", 404, decision="accept", responsible_section="x",
              responsible_person="y")
    _complete(api, _task(api, case_no), "xljd_dispatcher", decision="accept", responsible_section="司法所",
              responsible_person="xljd_handler")
    _complete(api, _task(api, case_no), "xljd_handler", result="人民调解达成协议", measures="组织双方调解")
    _complete(api, _task(api, case_no), "xljd_leader", decision="approve")
    case = _complete(api, _task(api, case_no), "tjy_acceptor", rating="satisfied")
    assert case["status"] == "closed"
    assert case["reporter"]["phone"] == PHONE  # the accepting community sees its citizen's data
