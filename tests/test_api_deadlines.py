"""Deadlines over HTTP: due_at, warn_at and the light on tasks and cases, the light filters,
the supervision centre's overdue list, and the ladder's users acting in their own lanes."""
from __future__ import annotations

from datetime import datetime, timedelta

from timers import TimerService


def fire(rt):
    TimerService(rt, "api-test").run_until_idle()


def test_tasks_and_cases_show_their_deadline_and_light(api, rt, clock):
    case_no = api.register()["case_no"]
    case = api.case(case_no)
    task = case["open_tasks"][0]
    assert task["light"] == "green" and task["deadline_estimated"] is False
    assert case["due_at"] == task["due_at"] and case["light"] == "green"

    clock.set(datetime.fromisoformat(task["warn_at"]) + timedelta(minutes=1))
    assert api.case(case_no)["light"] == "yellow"
    yellow = api.get("/api/v1/tasks?light=yellow", "yjp_acceptor").get_json()
    assert [t["case_no"] for t in yellow["items"]] == [case_no]
    assert api.get("/api/v1/tasks?overdue=true", "yjp_acceptor").get_json()["items"] == []

    clock.set(datetime.fromisoformat(task["due_at"]) + timedelta(minutes=1))
    assert api.case(case_no)["light"] == "red"
    red = api.get("/api/v1/tasks?overdue=true", "yjp_acceptor").get_json()
    assert [t["light"] for t in red["items"]] == ["red"]
    assert api.get("/api/v1/tasks?light=green", "yjp_acceptor").get_json()["items"] == []
    assert api.get("/api/v1/tasks?light=purple", "yjp_acceptor").status_code == 422


def test_supervision_centre_sees_and_closes_overdue_steps(api, rt, clock):
    case_no = api.register()["case_no"]
    api.step(case_no, "mediate")
    task = api.open_task(case_no)
    clock.set(datetime.fromisoformat(task["due_at"]) + timedelta(hours=2))
    fire(rt)

    resp = api.get("/api/v1/supervision/overdue", "jgzx_supervisor")
    assert resp.status_code == 200
    records = resp.get_json()["items"]
    assert len(records) == 1 and records[0]["case_no"] == case_no and records[0]["step"] == "sign_for"
    assert records[0]["unit"] == "YC-CGJ" and records[0]["late_hours"] == 2.0
    assert api.get("/api/v1/supervision/overdue", "auditor").status_code == 200
    assert api.get("/api/v1/supervision/overdue", "cgj_handler").status_code == 403
    assert api.get("/api/v1/supervision/overdue").status_code == 401

    rid = records[0]["id"]
    assert api.post(f"/api/v1/supervision/{rid}/note", "auditor", {"note": "x"}).status_code == 403
    resp = api.post(f"/api/v1/supervision/{rid}/note", "jgzx_supervisor", {"note": "已电话督促"})
    assert resp.status_code == 200 and "已电话督促" in resp.get_json()["note"]
    assert api.post(f"/api/v1/supervision/{rid}/note", "jgzx_supervisor", {}).status_code == 422
    assert api.post(f"/api/v1/supervision/{rid}/close", "jgzx_supervisor", {}).status_code == 409
    api.step(case_no, "sign_for")
    resp = api.post(f"/api/v1/supervision/{rid}/close", "jgzx_supervisor", {"note": "已签收"})
    assert resp.status_code == 200 and resp.get_json()["status"] == "closed"
    assert api.get("/api/v1/supervision/overdue", "jgzx_supervisor").get_json()["items"] == []
    assert api.post("/api/v1/supervision/99999/close", "jgzx_supervisor", {}).status_code == 404


def test_the_ladder_is_worked_by_each_levels_leader(api, rt, clock):
    case_no = api.register()["case_no"]
    for element, user in [("street_coordinate", "xljd_leader"), ("district_coordinate", "xlzzb_leader"),
                          ("city_coordinate", "yczzb_leader")]:
        task = api.open_task(case_no)
        clock.set(datetime.fromisoformat(task["due_at"]) + timedelta(minutes=1))
        fire(rt)
        case = api.case(case_no)
        assert case["status"] == "escalated" and case["open_tasks"][0]["element"] == element
        # Only that level's leader is a candidate: the community's acceptor is not.
        tid = case["open_tasks"][0]["id"]
        assert api.post(f"/api/v1/tasks/{tid}/claim", "yjp_acceptor").status_code in (403, 404)
        assert api.get(f"/api/v1/tasks/{tid}", user).status_code == 200
    resp = api.post(f"/api/v1/tasks/{tid}/claim", "yczzb_leader")
    assert resp.status_code == 200
    resp = api.post(f"/api/v1/tasks/{tid}/complete", "yczzb_leader",
                    {"data": {"decision": "assign", "opinion": "交市住建局办理", "assign_unit": "YC-ZJJ"}})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["status"] == "signing" and resp.get_json()["open_tasks"][0]["unit"] == "YC-ZJJ"
    api.step(case_no, "sign_for", "zjj_handler")
