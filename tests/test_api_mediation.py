"""The mediation docking over HTTP: a unit hands a case on, the body's mediator works it, bad input is a 422."""
from __future__ import annotations

BODY = {"mediation_body": "YC-YTW", "title": "术后感染赔偿纠纷", "description": "患者家属要求医院赔偿。",
        "category": "medical", "community": "XL-XLJD-YJP"}


def complete(api, task_id, user, **data):
    resp = api.post(f"/api/v1/tasks/{task_id}/complete", user, json={"data": data})
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_hand_off_work_and_outcome(api):
    resp = api.post("/api/v1/mediation/dockings", "wjw_handler", json=BODY)
    assert resp.status_code == 201, resp.get_json()
    case = resp.get_json()
    task = case["open_tasks"][0]
    assert (task["element"], task["unit"]) == ("accept_mediation", "YC-YTW")
    assert api.post(f"/api/v1/tasks/{task['id']}/complete", "wjw_handler",
                    json={"data": {"acceptance": "accept"}}).status_code in (403, 404)  # not the body's
    case = complete(api, task["id"], "ytw_mediator", acceptance="accept")
    task = case["open_tasks"][0]
    resp = api.post(f"/api/v1/tasks/{task['id']}/complete", "ytw_mediator", json={"data": {
        "session_date": "2025-03-04", "participants": "双方", "session_notes": "协商", "session_result": "failure"}})
    assert resp.status_code == 422 and set(resp.get_json()["errors"]) == {"doctor", "lawyer", "mediator"}
    complete(api, task["id"], "ytw_mediator", session_date="2025-03-04", participants="双方", session_notes="协商",
             session_result="failure", doctor="李", lawyer="王", mediator="赵")
    out = api.get(f"/api/v1/mediation/dockings/{case['case_no']}", "jgzx_supervisor").get_json()
    assert out["mediation_outcome"] == "failure" and out["status"] == "closed"
    assert out["mediation_sessions"][0]["team"] == {"doctor": "李", "lawyer": "王", "mediator": "赵"}


def test_bad_hand_off_names_the_field(api):
    resp = api.post("/api/v1/mediation/dockings", "wjw_handler", json=dict(BODY, mediation_body="YC-CGJ"))
    assert resp.status_code == 422 and set(resp.get_json()["errors"]) == {"mediation_body"}
    resp = api.post("/api/v1/mediation/dockings", "wjw_handler", json=dict(BODY, category="nope", extra=1))
    assert resp.status_code == 422
    assert api.get("/api/v1/cases", "jgzx_supervisor").get_json()["total"] == 0
    assert api.post("/api/v1/mediation/dockings", "auditor", json=BODY).status_code == 403
