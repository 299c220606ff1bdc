"""The stability assessment over HTTP: the owner unit starts it, the gate refuses approval naming the field."""
from __future__ import annotations

BODY = {"title": "云集路棚户区改造", "description": "拆迁安置 320 户", "project_kind": "demolition",
        "community": "XL-XLJD-YJP", "assessor": {"name": "湖北某工程咨询有限公司"}}


def test_owner_starts_and_the_gate_refuses_an_unfinished_assessment(api):
    assert api.post("/api/v1/assessments", "yjp_acceptor", json=BODY).status_code in (403, 422)  # no citizen door
    resp = api.post("/api/v1/assessments", "zjj_handler", json=BODY)
    assert resp.status_code == 201, resp.get_json()
    case = resp.get_json()
    assert case["open_tasks"][0]["element"] == "file_report" and case["status"] == "assessing"
    resp = api.post(f"/api/v1/assessments/{case['case_no']}/approval", "zjj_leader", json={})
    assert resp.status_code == 422 and set(resp.get_json()["errors"]) == {"assessment"}
    view = api.get(f"/api/v1/assessments/{case['case_no']}", "zjj_leader").get_json()
    assert view["approved"] is False and view["assessor"] == {"name": "湖北某工程咨询有限公司"}
    resp = api.post("/api/v1/assessments", "zjj_handler", json=dict(BODY, project_kind="dam"))
    assert resp.status_code == 422 and "project_kind" in resp.get_json()["errors"]
