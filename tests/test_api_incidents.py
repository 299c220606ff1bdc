"""/api/v1/incidents over HTTP, on an organisation with a gap (西陵区 without its coordination office).

A street leader escalating a case into the gap gets a clear 500 `organisation_gap`
naming the element and the missing level, and nothing changes; administrators and
designers see the incident, handlers do not; a retry before the fix fails and says why.
"""
from __future__ import annotations

import pytest

from tests.api_support import ApiClient
from tests.incident_support import dispose, make_app, processes_copy


@pytest.fixture
def gap_api(db_url, clock, tmp_path):
    from app import runtime_of
    from engine.services.seed import seed_demo

    app = make_app(db_url, processes_copy(tmp_path, gap=True))
    tokens = {u["username"]: u["token"] for u in seed_demo(runtime_of(app), allow_gaps=True)["users"]}
    yield ApiClient(app.test_client(), tokens)
    dispose(app)


def escalate_into_the_gap(api) -> tuple[str, object]:
    case_no = api.register()["case_no"]
    api.step(case_no, "mediate", "yjp_acceptor", mediation_result="escalate")
    task = api.open_task(case_no)
    assert task["element"] == "street_coordinate"
    api.post(f"/api/v1/tasks/{task['id']}/claim", "xljd_leader")
    resp = api.post(f"/api/v1/tasks/{task['id']}/complete", "xljd_leader",
                    {"data": {"decision": "escalate", "opinion": "报区综治中心"}})
    return case_no, resp


def test_a_request_into_the_gap_is_a_clear_error_and_an_incident_admins_and_designers_see(gap_api):
    api = gap_api
    case_no, resp = escalate_into_the_gap(api)
    body = resp.get_json()
    assert resp.status_code == 500 and body["code"] == "organisation_gap"
    assert body["element"] == "district_coordinate" and body["gap"].startswith("district_coordination:")
    assert "coordination_office" in body["message"] and body["errors"] == {}
    case = api.case(case_no)
    [task] = case["open_tasks"]
    assert task["element"] == "street_coordinate" and task["assignee"] == "xljd_leader"

    for user in ("admin", "designer"):
        resp = api.get("/api/v1/incidents", user)
        assert resp.status_code == 200, resp.get_json()
        page = resp.get_json()
        assert page["total"] == 1 and page["page"] == 1
        [item] = page["items"]
        assert item["kind"] == "no_unit" and item["case_no"] == case_no and item["element"] == "district_coordinate"
        assert item["status"] == "open" and item["tries"] == 1 and item["details"]["actor"] == "xljd_leader"
    incident_id = item["id"]
    for user in ("cgj_handler", "xljd_leader", "jgzx_supervisor", "auditor"):
        assert api.get("/api/v1/incidents", user).status_code == 403
        assert api.get(f"/api/v1/incidents/{incident_id}", user).status_code == 403
        resp = api.post(f"/api/v1/incidents/{incident_id}/retry", user)
        assert resp.status_code == 403 and resp.get_json()["code"] == "forbidden"
    assert api.get("/api/v1/incidents").status_code == 401

    one = api.get(f"/api/v1/incidents/{incident_id}", "admin")
    assert one.status_code == 200 and one.get_json()["id"] == incident_id
    missing = api.get("/api/v1/incidents/999999", "admin")
    assert missing.status_code == 404 and missing.get_json()["code"] == "not_found"
    assert api.post("/api/v1/incidents/999999/retry", "admin").status_code == 404


def test_filters_pages_and_a_retry_that_fails_again(gap_api):
    api = gap_api
    case_no, _ = escalate_into_the_gap(api)
    other, _ = escalate_into_the_gap(api)

    def listing(**query):
        resp = api.get("/api/v1/incidents", "admin", query_string=query)
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()

    assert listing()["total"] == 2
    assert [i["case_no"] for i in listing(case=case_no)["items"]] == [case_no]
    assert listing(kind="timer")["total"] == 0 and listing(kind="no_unit")["total"] == 2
    assert listing(status="resolved")["total"] == 0 and listing(status="all")["total"] == 2
    page = listing(per_page=1, page=2)
    assert page["total"] == 2 and len(page["items"]) == 1 and page["per_page"] == 1
    bad = api.get("/api/v1/incidents", "admin", query_string={"status": "closed"})
    assert bad.status_code == 422 and "status" in bad.get_json()["errors"]
    bad = api.get("/api/v1/incidents", "admin", query_string={"kind": "nope"})
    assert bad.status_code == 422 and "kind" in bad.get_json()["errors"]

    incident_id = listing(case=other)["items"][0]["id"]
    resp = api.post(f"/api/v1/incidents/{incident_id}/retry", "designer")
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["outcome"] == "failed" and "coordination_office" in body["error"]
    assert body["incident"]["status"] == "open" and body["incident"]["tries"] == 2


def test_the_openapi_document_lists_the_incident_endpoints(gap_api):
    paths = gap_api.get("/api/openapi.json").get_json()["paths"]
    assert {"/api/v1/incidents", "/api/v1/incidents/{incident_id}", "/api/v1/incidents/{incident_id}/retry"} \
        <= set(paths)
