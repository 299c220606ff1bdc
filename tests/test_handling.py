"""Handling as the seeds run it, over HTTP as the demo users: the named handler, refusal and transfer
(退回 / 转办) up to the first-handling unit (首办负责), co-handling units (协办) in parallel, and the
petition's joint reception (联合接访). Every path ends with replay and `audit verify` agreeing."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import select

from engine.services import audit
from engine.store.models import Outbox
from engine.store.timer_models import Supervision
from timers import TimerService

SH = ZoneInfo("Asia/Shanghai")
ACCEPT = {"decision": "accept", "responsible_section": "执法一科"}


def complete(api, task, user, status=200, **data):
    resp = api.post(f"/api/v1/tasks/{task['id']}/complete", user, {"data": data})
    assert resp.status_code == status, (user, task["element"], resp.get_json())
    return resp.get_json()


def tasks_of(api, case_no):
    return api.case(case_no)["open_tasks"]


def only(api, case_no, element):
    [task] = [t for t in tasks_of(api, case_no) if t["element"] == element]
    return task


def events(api, case_no, kind):
    return [e for e in api.get(f"/api/v1/cases/{case_no}/events", "auditor").get_json() if e["type"] == kind]


def assert_audit_agrees(rt, case_no):
    assert audit.verify_cases(rt, [case_no]) == {"checked": 1, "failed": 0, "results": []}
    assert audit.replay_case(rt, case_no)["verdict"] == "consistent"


def routed(api, **overrides):
    case_no = api.register("yjp_acceptor", **overrides)["case_no"]
    complete(api, only(api, case_no, "mediate"), "yjp_acceptor", mediation_result="unresolved")
    return case_no


def test_refuse_reroute_and_accept_at_the_right_unit(api, rt):
    case_no = routed(api)
    sign_for = only(api, case_no, "sign_for")
    # A refusal needs its reason; a suggested unit must be another active unit; nothing changes.
    body = complete(api, sign_for, "cgj_handler", 422, decision="refuse")
    assert set(body["errors"]) == {"refuse_reason"}
    body = complete(api, sign_for, "cgj_handler", 422, decision="refuse", refuse_reason="x", suggested_unit="NOPE")
    assert set(body["errors"]) == {"suggested_unit"}
    assert api.case(case_no)["status"] == "signing" and events(api, case_no, "case_refused") == []

    case = complete(api, sign_for, "cgj_handler", decision="refuse", refuse_reason="属环保职责：工厂排污",
                    suggested_unit="YC-HBJ")
    assert case["status"] == "transferring" and case["current_unit"] == "YC-JGZX"
    [refused] = events(api, case_no, "case_refused")
    assert refused["payload"] == {"unit": "YC-CGJ", "reason": "属环保职责：工厂排污", "suggested_unit": "YC-HBJ"}
    with rt.db.read() as s:
        assert [o.recipient for o in s.scalars(select(Outbox).where(Outbox.kind == "refused"))] == ["YC-JGZX"]

    reroute = only(api, case_no, "reroute")
    assert reroute["unit"] == "YC-JGZX" and reroute["role"] == "supervisor"
    body = complete(api, reroute, "jgzx_supervisor", 422, route_to="YC-CGJ")  # back to the refusing unit
    assert set(body["errors"]) == {"route_to"}
    complete(api, reroute, "jgzx_supervisor", 422, route_to="NOPE")
    case = complete(api, reroute, "jgzx_supervisor", route_to="YC-HBJ", reroute_note="按建议转环保局")
    assert (case["status"], case["routed_unit"], case["transfers"]) == ("signing", "YC-HBJ", 1)
    [moved] = events(api, case_no, "case_transferred")
    assert moved["payload"]["from_unit"] == "YC-CGJ" and moved["payload"]["to_unit"] == "YC-HBJ"

    sign_for = only(api, case_no, "sign_for")
    assert sign_for["unit"] == "YC-HBJ"
    complete(api, sign_for, "cgj_handler", 403, **ACCEPT, responsible_person="cgj_handler")  # no longer its task
    case = complete(api, sign_for, "hbj_handler", **ACCEPT, responsible_person="hbj_handler")
    assert case["first_handling_unit"] == "YC-HBJ"
    assert only(api, case_no, "handle")["assignee"] == "hbj_handler"
    assert_audit_agrees(rt, case_no)


def test_after_the_transfer_cap_the_unit_holding_it_is_the_first_handling_unit(api, rt):
    case_no = routed(api)
    for unit, user, target in (("YC-CGJ", "cgj_handler", "YC-GAJ"), ("YC-GAJ", "gaj_handler", "YC-ZJJ")):
        sign_for = only(api, case_no, "sign_for")
        assert sign_for["unit"] == unit
        complete(api, sign_for, user, decision="refuse", refuse_reason="非本单位职责")
        complete(api, only(api, case_no, "reroute"), "jgzx_supervisor", route_to=target)
    case = api.case(case_no)
    assert case["transfers"] == 2 and case["routed_unit"] == "YC-ZJJ"
    with rt.db.read() as s:
        assert [o.recipient for o in s.scalars(select(Outbox).where(Outbox.kind == "first_handling"))] == ["YC-JGZX"]
    sign_for = only(api, case_no, "sign_for")
    body = complete(api, sign_for, "zjj_handler", 422, decision="refuse", refuse_reason="非本单位职责")
    assert "首办负责" in body["errors"]["decision"][0]
    case = complete(api, sign_for, "zjj_handler", **ACCEPT, responsible_person="zjj_handler")
    assert case["first_handling_unit"] == "YC-ZJJ" and len(events(api, case_no, "case_refused")) == 2
    assert_audit_agrees(rt, case_no)


def test_co_handling_in_parallel_one_late_one_refusing_then_consolidated_and_approved(api, rt, clock):
    case_no = routed(api)
    complete(api, only(api, case_no, "sign_for"), "cgj_handler", **ACCEPT, responsible_person="cgj_handler")
    handle = only(api, case_no, "handle")
    assert handle["assignee"] == "cgj_handler"
    for bad in (["YC-CGJ"], ["NOPE"], "YC-GAJ,YC-NOPE"):
        body = complete(api, handle, "cgj_handler", 422, result="联合处置", measures="会同公安、环保", co_units=bad)
        assert set(body["errors"]) == {"co_units"}, body
    case = complete(api, handle, "cgj_handler", result="联合处置", measures="会同公安、环保",
                    co_units=["YC-GAJ", "YC-HBJ"])
    assert case["co_units"] == ["YC-GAJ", "YC-HBJ"] and case["status"] == "handling"
    co = sorted((t["unit"], t["element"]) for t in case["open_tasks"])
    assert co == [("YC-GAJ", "co_sign_for"), ("YC-HBJ", "co_sign_for")]
    assert case["current_unit"] == "YC-CGJ"  # the co-handlers work for the lead unit, which keeps the case

    gaj = [t for t in case["open_tasks"] if t["unit"] == "YC-GAJ"][0]
    hbj = [t for t in case["open_tasks"] if t["unit"] == "YC-HBJ"][0]
    complete(api, gaj, "hbj_handler", 403, decision="refuse", refuse_reason="x")  # not its unit's task
    complete(api, gaj, "gaj_handler", decision="refuse", refuse_reason="不涉及治安问题")
    complete(api, hbj, "hbj_handler", 422, **ACCEPT, responsible_person="cgj_handler")  # not a HBJ handler
    case = complete(api, hbj, "hbj_handler", **ACCEPT, responsible_person="hbj_handler")
    [co_handle] = case["open_tasks"]
    assert (co_handle["element"], co_handle["unit"], co_handle["assignee"]) == ("co_handle", "YC-HBJ", "hbj_handler")

    # The co-handler is late: its step turns red for it, and the lead unit has no red of its own.
    clock.set(datetime.fromisoformat(co_handle["due_at"]).astimezone(timezone.utc).replace(hour=23))
    TimerService(rt, "test-worker").run_until_idle()
    with rt.db.read() as s:
        records = [(r.step, r.unit_code) for r in s.scalars(select(Supervision))]
    assert records == [("co_handle", "YC-HBJ")]
    assert only(api, case_no, "co_handle")["light"] == "red"

    case = complete(api, only(api, case_no, "co_handle"), "hbj_handler", co_opinion="已对排污口取样，责令整改")
    consolidate = only(api, case_no, "consolidate")
    assert consolidate["unit"] == "YC-CGJ" and consolidate["assignee"] == "cgj_handler"
    shown = api.get(f"/api/v1/tasks/{consolidate['id']}", "cgj_handler").get_json()["shown"]["co_results"]
    assert sorted((r["unit"], r["status"]) for r in shown) == [("YC-GAJ", "refused"), ("YC-HBJ", "done")]
    complete(api, consolidate, "cgj_handler", result="城管、环保联合处置，已整改", measures="联合执法")
    case = complete(api, only(api, case_no, "approve"), "cgj_leader", decision="approve")
    assert case["status"] == "evaluating" and case["reply"]["text"] == "城管、环保联合处置，已整改"
    assert [e["payload"]["units"] for e in events(api, case_no, "co_units_added")] == [["YC-GAJ", "YC-HBJ"]]
    assert [e["payload"].get("co_handling") for e in events(api, case_no, "case_refused")] == [True]
    assert_audit_agrees(rt, case_no)


def test_joint_reception_of_a_petition(api, rt):
    case_no = routed(api, category="petition")
    complete(api, only(api, case_no, "sign_for"), "xfj_handler", **ACCEPT, responsible_person="xfj_handler")
    convene = only(api, case_no, "convene_reception")
    body = complete(api, convene, "xfj_handler", 422, co_units=[], lawyer_name="王律师", lawyer_org="某律师事务所",
                    reception_date="2025-03-05")
    assert set(body["errors"]) == {"co_units"}
    complete(api, convene, "xfj_handler", 422, co_units=["YC-RSJ"], lawyer_name="王律师",
             lawyer_org="某律师事务所", reception_date="5 March")
    case = complete(api, convene, "xfj_handler", co_units=["YC-RSJ"], lawyer_name="王律师",
                    lawyer_org="湖北某律师事务所", reception_date="2025-03-05", reception_place="市信访接待中心")
    rsj = only(api, case_no, "co_sign_for")
    assert rsj["unit"] == "YC-RSJ"
    complete(api, rsj, "rsj_handler", **ACCEPT, responsible_person="rsj_handler")
    joint = only(api, case_no, "joint_reception")
    complete(api, joint, "xfj_handler", participants="信访局、人社局、律师", conclusion="依法解释政策，落实社保补缴",
             measures="人社局一周内办理补缴")
    approve = only(api, case_no, "approve")
    case = complete(api, approve, "xfj_leader", decision="approve")
    assert case["reply"]["text"] == "依法解释政策，落实社保补缴"
    [held] = events(api, case_no, "joint_reception_held")
    assert held["payload"]["lawyer"] == {"name": "王律师", "organisation": "湖北某律师事务所"}
    assert held["payload"]["units"] == ["YC-RSJ"]
    assert_audit_agrees(rt, case_no)
