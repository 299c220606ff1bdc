"""Tasks over HTTP: the lists, one task, claim, unclaim, delegate, complete; and the process definitions."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from engine.store.models import CaseTask

SIGN_FOR = {"decision": "accept", "responsible_section": "执法一科", "responsible_person": "cgj_handler"}


def _ids(resp) -> list[str]:
    assert resp.status_code == 200, resp.get_json()
    return [t["id"] for t in resp.get_json()["items"]]


def _events(api, case_no, *types):
    events = api.get(f"/api/v1/cases/{case_no}/events", "auditor").get_json()
    return [(e["type"], e["actor"], e["payload"]) for e in events if e["type"] in types]


def test_task_lists_by_scope_and_filters(api, rt, clock):
    case_no, task = api.at_signing()
    other_no, other = api.at_signing(title="占道经营")
    tasks = lambda user, **q: _ids(api.get("/api/v1/tasks", user, query_string=q))  # noqa: E731
    assert tasks("cgj_handler") == [task["id"], other["id"]]           # candidate is the default scope
    assert tasks("cgj_dispatcher", scope="candidate") == [task["id"], other["id"]]  # acts for the handlers
    assert tasks("cgj_leader") == [] and tasks("gaj_handler") == [] and tasks("auditor") == []
    assert tasks("cgj_handler", scope="mine") == []
    assert api.post(f"/api/v1/tasks/{task['id']}/claim", "cgj_handler").status_code == 200
    assert tasks("cgj_handler", scope="mine") == [task["id"]]
    assert tasks("cgj_handler2", scope="mine") == []
    assert tasks("cgj_handler2") == [task["id"], other["id"]]           # claimed tasks stay visible to candidates
    assert tasks("cgj_handler", case=other_no) == [other["id"]]
    assert tasks("cgj_handler", lane="责任单位") == [task["id"], other["id"]]
    assert tasks("cgj_handler", lane="社区") == []
    with rt.db.write() as s:
        s.execute(update(CaseTask).where(CaseTask.id == other["id"]).values(due_at=clock.now() + timedelta(days=1)))
        s.execute(update(CaseTask).where(CaseTask.id == task["id"]).values(due_at=clock.now() + timedelta(days=3)))
    assert tasks("cgj_handler") == [other["id"], task["id"]]            # earliest deadline first
    assert tasks("cgj_handler", due_before=(clock.now() + timedelta(days=2)).isoformat()) == [other["id"]]
    page = api.get("/api/v1/tasks", "cgj_handler", query_string={"per_page": 1, "page": 2}).get_json()
    assert page["total"] == 2 and [t["id"] for t in page["items"]] == [task["id"]]
    assert page["items"][0]["case"]["case_no"] == case_no and page["items"][0]["overdue"] is False
    resp = api.get("/api/v1/tasks", "cgj_handler", query_string={"scope": "everything", "due_before": "soon"})
    assert resp.status_code == 422 and set(resp.get_json()["errors"]) == {"scope", "due_before"}


def test_one_task_with_form_case_summary_deadline_and_actions(api, rt, clock):
    case_no, task = api.at_signing()
    with rt.db.write() as s:
        s.execute(update(CaseTask).where(CaseTask.id == task["id"]).values(due_at=clock.now() - timedelta(hours=1)))
    view = api.get(f"/api/v1/tasks/{task['id']}", "cgj_handler").get_json()
    assert view["element"] == "sign_for" and view["name"] and view["lane"] == "责任单位"
    assert view["role"] == "handler" and view["unit"] == "YC-CGJ" and view["state"] == "ready"
    assert [(f["name"], f["type"], f["required"]) for f in view["form"]] == [
        ("decision", "enum", True), ("responsible_section", "string", False),
        ("responsible_person", "string", False), ("refuse_reason", "text", False), ("suggested_unit", "string", False)]
    assert view["form"][2]["required_if"] == {"field": "decision", "value": "accept"}
    assert view["case"]["case_no"] == case_no and view["case"]["title"] == "楼上漏水纠纷"
    assert view["due_at"] == (clock.now() - timedelta(hours=1)).isoformat() and view["overdue"] is True
    assert view["actions"] == ["claim", "complete"]
    assert api.get(f"/api/v1/tasks/{task['id']}", "cgj_dispatcher").get_json()["actions"] == \
        ["claim", "complete", "delegate"]
    assert api.get(f"/api/v1/tasks/{task['id']}", "cgj_leader").get_json()["actions"] == ["delegate"]
    assert api.get(f"/api/v1/tasks/{task['id']}", "jgzx_supervisor").get_json()["actions"] == []
    for missing in ("00000000-0000-0000-0000-000000000000", "not-a-task"):
        resp = api.get(f"/api/v1/tasks/{missing}", "cgj_handler")
        assert resp.status_code == 404 and resp.get_json()["code"] == "task_not_found"


def test_claim_reclaim_conflict_and_unclaim(api):
    case_no, task = api.at_signing()
    url = f"/api/v1/tasks/{task['id']}"
    first = api.post(f"{url}/claim", "cgj_handler")
    assert first.status_code == 200 and first.get_json()["assignee"] == "cgj_handler"
    assert first.get_json()["actions"] == ["claim", "complete", "unclaim"]
    again = api.post(f"{url}/claim", "cgj_handler")
    assert again.status_code == 200 and again.get_json()["assignee"] == "cgj_handler"
    second = api.post(f"{url}/claim", "cgj_handler2")
    assert second.status_code == 409
    assert second.get_json()["code"] == "task_claimed" and second.get_json()["assignee"] == "cgj_handler"
    assert "cgj_handler" in second.get_json()["message"]
    assert api.post(f"{url}/unclaim", "cgj_handler2").status_code == 409   # not theirs to release
    released = api.post(f"{url}/unclaim", "cgj_handler")
    assert released.status_code == 200 and released.get_json()["assignee"] is None
    assert api.post(f"{url}/unclaim", "cgj_handler").status_code == 200   # releasing a free task is a no-op
    assert api.post(f"{url}/claim", "cgj_handler2").get_json()["assignee"] == "cgj_handler2"
    assert api.post(f"{url}/unclaim", "cgj_dispatcher").get_json()["assignee"] is None  # the work centre may
    assert _events(api, case_no, "task_claimed", "task_unclaimed")[-4:] == [
        ("task_claimed", "cgj_handler", {"assignee": "cgj_handler"}),
        ("task_unclaimed", "cgj_handler", {"previous": "cgj_handler"}),
        ("task_claimed", "cgj_handler2", {"assignee": "cgj_handler2"}),
        ("task_unclaimed", "cgj_dispatcher", {"previous": "cgj_handler2"}),
    ]
    version = api.case(case_no)["version"]
    api.post(f"{url}/claim", "cgj_handler")
    assert api.case(case_no)["version"] == version  # a claim is not a change of the case's workflow


def test_complete_requires_holding_the_task_or_claims_it(api):
    case_no, task = api.at_signing()
    url = f"/api/v1/tasks/{task['id']}"
    api.post(f"{url}/claim", "cgj_handler2")
    resp = api.post(f"{url}/complete", "cgj_handler", {"data": SIGN_FOR})
    assert resp.status_code == 409 and resp.get_json()["assignee"] == "cgj_handler2"
    api.post(f"{url}/unclaim", "cgj_handler2")
    done = api.post(f"{url}/complete", "cgj_handler", {"data": SIGN_FOR})  # unclaimed: claimed and completed
    assert done.status_code == 200 and done.get_json()["status"] == "handling"
    row = api.get(url, "cgj_handler").get_json()
    assert row["state"] == "completed" and row["assignee"] == "cgj_handler" and row["ended_by"] == "cgj_handler"
    assert row["actions"] == []
    again = api.post(f"{url}/complete", "cgj_handler", {"data": SIGN_FOR})
    assert again.status_code == 409 and again.get_json()["code"] == "task_not_ready"
    assert api.post(f"{url}/claim", "cgj_handler").get_json()["code"] == "task_not_ready"
    assert api.post(f"{url}/unclaim", "cgj_handler").status_code == 409


def test_delegate(api):
    case_no, task = api.at_signing()
    url = f"/api/v1/tasks/{task['id']}"
    api.post(f"{url}/claim", "cgj_handler")
    resp = api.post(f"{url}/delegate", "cgj_dispatcher", {"username": "cgj_handler2"})
    assert resp.status_code == 200 and resp.get_json()["assignee"] == "cgj_handler2"
    assert _events(api, case_no, "task_delegated") == [
        ("task_delegated", "cgj_dispatcher", {"from": "cgj_handler", "to": "cgj_handler2"})]
    assert api.post(f"{url}/complete", "cgj_handler", {"data": SIGN_FOR}).status_code == 409
    assert api.post(f"{url}/delegate", "cgj_leader", {"username": "cgj_dispatcher"}).get_json()["assignee"] == \
        "cgj_dispatcher"
    assert api.post(f"{url}/delegate", "cgj_handler", {"username": "cgj_handler"}).status_code == 403
    for username in ("cgj_leader", "gaj_handler", "nobody"):
        resp = api.post(f"{url}/delegate", "cgj_dispatcher", {"username": username})
        assert resp.status_code == 422 and "username" in resp.get_json()["errors"], username
    for body in ({}, {"username": ""}, {"username": 7}):
        assert api.post(f"{url}/delegate", "cgj_dispatcher", body).status_code == 422
    assert api.post(f"{url}/complete", "cgj_dispatcher", {"data": SIGN_FOR}).status_code == 200
    assert api.post(f"{url}/delegate", "cgj_dispatcher", {"username": "cgj_handler"}).status_code == 409


def test_a_bad_form_is_422_and_changes_nothing(api):
    case_no, task = api.at_signing()
    url = f"/api/v1/tasks/{task['id']}/complete"
    before = api.case(case_no)
    n_events = len(api.get(f"/api/v1/cases/{case_no}/events", "auditor").get_json())
    resp = api.post(url, "cgj_handler", {"data": {"decision": "accept", "responsible_section": 5, "routed_unit": "YC-GAJ"}})
    assert resp.status_code == 422
    assert set(resp.get_json()["errors"]) == {"responsible_section", "responsible_person", "routed_unit"}
    for body in ({}, {"data": "text"}, {"data": [1]}, {"data": SIGN_FOR, "extra": 1},
                 {"data": dict(SIGN_FOR, responsible_person="李\x00四")}):
        resp = api.post(url, "cgj_handler", body)
        assert resp.status_code == 422, body
    resp = api.client.post(url, data="{", content_type="application/json", headers=api.headers("cgj_handler"))
    assert resp.status_code == 400
    after = api.case(case_no)
    assert after["version"] == before["version"] and after["status"] == "signing"
    assert len(api.get(f"/api/v1/cases/{case_no}/events", "auditor").get_json()) == n_events


def test_a_stale_version_is_a_409(api):
    case_no, task = api.at_signing()
    version = api.case(case_no)["version"]
    url = f"/api/v1/tasks/{task['id']}/complete"
    stale = api.post(url, "cgj_handler", {"data": SIGN_FOR, "version": version - 1})
    assert stale.status_code == 409 and stale.get_json()["code"] == "stale_version"
    assert stale.get_json()["current_version"] == version
    ok = api.post(url, "cgj_handler", {"data": SIGN_FOR, "version": version})
    assert ok.status_code == 200 and ok.get_json()["version"] > version


def test_process_definitions_and_their_bpmn(api, rt):
    processes = api.get("/api/v1/processes", "designer").get_json()
    [standard] = [p for p in processes if p["process_id"] == "dispute_urban_management"]
    assert standard["process_id"] == "dispute_urban_management" and standard["latest"] == 1
    assert [v["version"] for v in standard["versions"]] == [1]
    assert standard["versions"][0]["source"] == "dispute_urban_management.bpmn"
    assert len(standard["versions"][0]["sha256"]) == 64
    resp = api.get("/api/v1/processes/dispute_urban_management/versions/1/bpmn", "cgj_handler")
    assert resp.status_code == 200 and resp.mimetype == "application/xml"
    assert resp.data == (rt.processes_dir / "dispute_urban_management.bpmn").read_bytes()
    for path in ("/api/v1/processes/dispute_urban_management/versions/2/bpmn", "/api/v1/processes/nope/versions/1/bpmn",
                 "/api/v1/processes/dispute_urban_management/versions/99999999999999999999/bpmn"):
        resp = api.get(path, "designer")
        assert resp.status_code == 404 and resp.get_json()["code"] in ("definition_not_found", "not_found"), path
