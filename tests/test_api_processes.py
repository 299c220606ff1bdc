"""/api/v1/processes over HTTP: validate, deploy, versions, diff; who may; and pinned cases."""
from __future__ import annotations

import io

import pytest

from tests.test_validate import diagram, generated_files

STANDARD = "dispute_urban_management.bpmn"


def upload(api, path, user, files: dict[str, bytes]):
    data = {"file": [(io.BytesIO(content), name) for name, content in files.items()]}
    return api.client.post(path, headers=api.headers(user), data=data, content_type="multipart/form-data")


@pytest.fixture
def standard(rt) -> bytes:
    return (rt.processes_dir / STANDARD).read_bytes()


def test_validate_answers_a_verdict_for_each_file(api, standard):
    ok = upload(api, "/api/v1/processes/validate", "designer", {STANDARD: standard})
    assert ok.status_code == 200, ok.get_json()
    assert ok.get_json() == {"valid": True, "files": [{"file": STANDARD, "problems": []}]}
    bad = upload(api, "/api/v1/processes/validate", "designer",
                 {"late.bpmn": diagram(timer_kind="warn"), "junk.bpmn": b"\xff\x00"})
    assert bad.status_code == 200
    body = bad.get_json()
    assert body["valid"] is False
    verdicts = {f["file"]: f["problems"] for f in body["files"]}
    assert [(p["element"], p["reason"]) for p in verdicts["late.bpmn"]] == [("work", "user task has no deadline timer")]
    assert verdicts["late.bpmn"][0]["line"] and verdicts["late.bpmn"][0]["fix"]
    assert verdicts["junk.bpmn"][0]["reason"].startswith("not UTF-8")


def test_validate_gives_every_generated_file_a_verdict_never_a_500(api):
    for name, content in generated_files().items():
        if len(content) > 2 * 1024 * 1024:
            continue  # over the upload limit: see the 413 test
        resp = upload(api, "/api/v1/processes/validate", "designer", {name: content})
        assert resp.status_code == 200, (name, resp.get_json())
        assert resp.get_json()["valid"] is False, name


def test_only_designers_validate_and_deploy_and_a_token_is_needed(api, standard):
    for path in ("/api/v1/processes/validate", "/api/v1/processes"):
        forbidden = upload(api, path, "yjp_acceptor", {STANDARD: standard})
        assert forbidden.status_code == 403 and forbidden.get_json()["code"] == "forbidden"
        assert upload(api, path, "admin", {STANDARD: standard}).status_code == 403
        assert upload(api, path, None, {STANDARD: standard}).status_code == 401
    missing = api.client.post("/api/v1/processes/validate", headers=api.headers("designer"), data={},
                              content_type="multipart/form-data")
    assert missing.status_code == 422 and "file" in missing.get_json()["errors"]


def test_a_too_large_upload_is_a_413_with_the_error_body(api):
    resp = upload(api, "/api/v1/processes/validate", "designer", {"big.bpmn": b"<a/>" + b" " * (5 * 1024 * 1024)})
    assert resp.status_code == 413
    assert resp.get_json()["code"] == "too_large"


def test_deploy_stores_a_new_version_only_when_valid_and_records_who(api, standard):
    edited = standard.replace("按类别分派".encode(), "按类别派单".encode())
    unchanged = upload(api, "/api/v1/processes", "designer", {STANDARD: standard})
    assert unchanged.status_code == 201
    assert [(r["version"], r["new"]) for r in unchanged.get_json()] == [(1, False)]
    broken = edited.replace(b'calledElement="unit_handling"', b'calledElement="no_such_process"')
    refused = upload(api, "/api/v1/processes", "designer", {STANDARD: broken})
    assert refused.status_code == 422
    assert refused.get_json()["code"] == "definition_invalid"
    [problem] = refused.get_json()["problems"]
    assert problem["element"] == "call_handling" and "'no_such_process'" in problem["reason"]
    assert len(api.get("/api/v1/processes/dispute_urban_management/versions", "designer").get_json()) == 1
    created = upload(api, "/api/v1/processes", "designer", {STANDARD: edited})
    assert created.status_code == 201
    assert [(r["process_id"], r["version"], r["new"], r["deployed_by"]) for r in created.get_json()] == [
        ("dispute_urban_management", 2, True, "designer")]
    versions = api.get("/api/v1/processes/dispute_urban_management/versions", "jgzx_supervisor").get_json()
    assert [(v["version"], v["deployed_by"], v["source"]) for v in versions] == [
        (1, "tests", STANDARD), (2, "designer", STANDARD)]
    assert all(len(v["sha256"]) == 64 and v["deployed_at"] for v in versions)
    assert api.get("/api/v1/processes/nothing/versions", "designer").status_code == 404


def test_diff_names_added_removed_and_changed_elements(api, standard):
    edited = (standard.replace("按类别分派".encode(), "按类别派单".encode())
              .replace(b"evaluation_outcome == 'route' and rework_count &lt;= max_reworks",
                       b"evaluation_outcome == 'route' and rework_count &lt; max_reworks")
              .replace(b'<bpmn:endEvent id="end_closed"', b'<bpmn:endEvent id="end_done"')
              .replace(b'targetRef="end_closed"', b'targetRef="end_done"')
              .replace(b"<bpmn:flowNodeRef>end_closed</bpmn:flowNodeRef>", b"<bpmn:flowNodeRef>end_done</bpmn:flowNodeRef>"))
    assert upload(api, "/api/v1/processes", "designer", {STANDARD: edited}).status_code == 201
    resp = api.get("/api/v1/processes/dispute_urban_management/diff?from=1&to=2", "designer")
    assert resp.status_code == 200, resp.get_json()
    d = resp.get_json()
    assert (d["process_id"], d["from"], d["to"]) == ("dispute_urban_management", 1, 2)
    assert [e["element"] for e in d["added"]] == ["end_done"]
    assert [e["element"] for e in d["removed"]] == ["end_closed"]
    changed = {e["element"]: e["changes"] for e in d["changed"]}
    assert {"field": "name", "from": "按类别分派", "to": "按类别派单"} in changed["route_case_task"]
    assert {"field": "condition", "from": "evaluation_outcome == 'route' and rework_count <= max_reworks",
            "to": "evaluation_outcome == 'route' and rework_count < max_reworks"} in \
        changed["flow_gw_evaluated_to_route_case_task"]
    assert any(c["field"] == "@targetRef" for c in changed["flow_gw_evaluated_to_end_closed"])
    same = api.get("/api/v1/processes/dispute_urban_management/diff?from=2&to=2", "designer").get_json()
    assert same["added"] == same["removed"] == same["changed"] == []
    assert api.get("/api/v1/processes/dispute_urban_management/diff?from=1&to=7", "designer").status_code == 404
    assert api.get("/api/v1/processes/dispute_urban_management/diff?from=x&to=2", "designer").status_code == 422


def test_a_running_case_keeps_its_version_and_new_cases_take_the_newest(api, rt):
    old = api.register()["case_no"]
    shared = (rt.processes_dir / "community_mediation.bpmn").read_bytes()  # a shared sub-procedure
    edited = shared.replace('name="社区调解"'.encode(), 'name="社区人民调解"'.encode())
    assert upload(api, "/api/v1/processes", "designer", {"community_mediation.bpmn": edited}).status_code == 201
    new = api.register()["case_no"]
    assert api.open_task(old)["name"] == "社区调解"
    assert api.open_task(new)["name"] == "社区人民调解"
    api.step(old, "mediate")
    assert api.open_task(old)["element"] == "sign_for"
