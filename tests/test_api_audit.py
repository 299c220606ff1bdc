"""Replay and path over HTTP: auditors replay, anyone who sees a case gets its path; claims join the chain."""
from __future__ import annotations

from engine.services import audit


def test_replay_of_a_case_driven_by_each_role_with_claims_and_delegation(api, rt):
    case_no, task = api.at_signing()
    url = f"/api/v1/tasks/{task['id']}"
    assert api.post(f"{url}/claim", "cgj_handler").status_code == 200
    assert api.post(f"{url}/delegate", "cgj_dispatcher", {"username": "cgj_handler2"}).status_code == 200
    assert api.post(f"{url}/unclaim", "cgj_handler2").status_code == 200
    api.drive(case_no, "sign_for", "handle", "approve", "evaluate")

    resp = api.get(f"/api/v1/cases/{case_no}/replay", "auditor")
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["verdict"] == "consistent" and body["consistent"] and body["divergence"] is None
    assert body["process_id"] == "dispute_urban_management" and body["definition_version"] == 1
    kinds = [s["type"] for s in body["steps"]]
    assert {"task_claimed", "task_delegated", "task_unclaimed", "case_completed"} <= set(kinds)
    delegated = next(s for s in body["steps"] if s["type"] == "task_delegated")
    assert delegated["actor"] == "cgj_dispatcher" and delegated["lane"] and delegated["payload"]["to"] == "cgj_handler2"
    assert body["steps"][0]["payload"]["intake"]["reporter"]["phone"] == "138****5678"  # auditors see it masked
    assert audit.verify_cases(rt)["failed"] == 0

    claimed = next(s["seq"] for s in body["steps"] if s["type"] == "task_delegated")
    as_of = api.get(f"/api/v1/cases/{case_no}/replay?until={claimed}", "auditor").get_json()["as_of"]
    assert as_of["open_tasks"] == [{"task_id": task["id"], "element": "sign_for", "name": "签收",
                                    "lane": task["lane"], "assignee": "cgj_handler2"}]
    assert as_of["seq"] == claimed and not as_of["completed"]

    path = api.get(f"/api/v1/cases/{case_no}/path", "yjp_acceptor").get_json()
    assert path["elements"][0] == "start" and path["elements"][-1] == "end_closed"
    assert [e for e in path["elements"] if e in {"mediate", "sign_for", "handle", "approve", "evaluate"}] == \
        ["mediate", "sign_for", "handle", "approve", "evaluate"]
    assert path["open"] == [] and path["consistent"]


def test_replay_is_for_auditors_and_both_views_follow_the_scope(api):
    case_no = api.register()["case_no"]
    assert api.get(f"/api/v1/cases/{case_no}/replay", "yjp_acceptor").status_code == 403
    assert api.get(f"/api/v1/cases/{case_no}/replay", "jgzx_supervisor").status_code == 403
    assert api.get(f"/api/v1/cases/{case_no}/replay", "gaj_handler").status_code == 404
    assert api.get(f"/api/v1/cases/{case_no}/path", "gaj_handler").status_code == 404
    assert api.get("/api/v1/cases/2025-999999/replay", "auditor").status_code == 404
    assert api.get(f"/api/v1/cases/{case_no}/replay?until=0", "auditor").status_code == 422
    assert api.get(f"/api/v1/cases/{case_no}/replay").status_code == 401
    assert api.get(f"/api/v1/cases/{case_no}/path", "yjp_acceptor").get_json()["open"] == ["mediate"]
    assert api.get(f"/api/v1/cases/{case_no}/path", "auditor").status_code == 200
