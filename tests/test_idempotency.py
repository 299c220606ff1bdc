"""Idempotency-Key: a retried intake or completion acts once, and the retry gets the first response again.

Over the real app on both databases: the same intake twice is one case; a
completion whose response was "lost" and is sent again is one completion with
the same status and body (`Idempotent-Replayed: true`); the key with another
body is a 422; keys are per caller and expire; a failed request stores
nothing; the stored response commits with the action or not at all; and
eight real HTTP clients sending one key at the same instant make one case.
"""
from __future__ import annotations

import threading
import uuid
from collections import Counter

import pytest
import requests
from sqlalchemy import func, select
from werkzeug.serving import make_server

from engine.services import idempotency
from engine.services.idempotency import StoredResponse, run_once
from engine.store.models import Case, CaseEvent
from engine.store.org_models import CaseComment
from tests.api_support import intake_body

CASES = "/api/v1/cases"


def count(rt, model, *where) -> int:
    with rt.db.read() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def post(api, path, user, body, key):
    return api.client.post(path, headers={**api.headers(user), "Idempotency-Key": key}, json=body)


def test_the_same_intake_twice_registers_one_case(api, rt):
    key = str(uuid.uuid4())
    first = post(api, CASES, "yjp_acceptor", intake_body(), key)
    assert first.status_code == 201, first.get_json()
    assert "Idempotent-Replayed" not in first.headers
    # The retry's JSON has its keys in another order: the same request all the same.
    again = post(api, CASES, "yjp_acceptor", dict(reversed(list(intake_body().items()))), key)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json() and again.content_type == first.content_type
    assert count(rt, Case) == 1


def test_a_completion_whose_response_was_lost_is_done_once(api, rt):
    case_no = api.register()["case_no"]
    task = api.open_task(case_no)
    path, body, key = f"/api/v1/tasks/{task['id']}/complete", {"data": {"mediation_result": "unresolved"}}, "c-1"
    lost = post(api, path, "yjp_acceptor", body, key)  # the client never saw this one
    assert lost.status_code == 200, lost.get_json()
    retried = post(api, path, "yjp_acceptor", body, key)
    assert (retried.status_code, retried.get_data()) == (200, lost.get_data())
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert count(rt, CaseEvent, CaseEvent.type == "task_completed", CaseEvent.task_id == task["id"]) == 1
    # Without the key, the same retry is refused by the engine: the task is done.
    assert api.post(path, "yjp_acceptor", body).status_code == 409


def test_the_same_key_with_another_request_is_refused(api, rt):
    key = "intake-7"
    assert post(api, CASES, "yjp_acceptor", intake_body(), key).status_code == 201
    other = post(api, CASES, "yjp_acceptor", intake_body(title="另一件事"), key)
    assert other.status_code == 422
    assert other.get_json()["code"] == "idempotency_key_reused"
    assert "Idempotency-Key" in other.get_json()["errors"]
    case_no = api.client.get(CASES, headers=api.headers("yjp_acceptor")).get_json()["items"][0]["case_no"]
    elsewhere = post(api, f"{CASES}/{case_no}/comments", "yjp_acceptor", {"body": "x"}, key)
    assert elsewhere.status_code == 422 and elsewhere.get_json()["code"] == "idempotency_key_reused"
    assert count(rt, Case) == 1 and count(rt, CaseComment) == 0


def test_keys_belong_to_their_caller_and_work_on_every_state_changing_endpoint(api, rt):
    key = "shared-key"
    a = post(api, CASES, "yjp_acceptor", intake_body(), key)
    b = post(api, CASES, "yjp_acceptor2", intake_body(), key)
    assert (a.status_code, b.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in b.headers and a.get_json()["case_no"] != b.get_json()["case_no"]
    comments = f"{CASES}/{a.get_json()['case_no']}/comments"
    replies = [post(api, comments, "yjp_acceptor", {"body": "已电话回访"}, "comment-1") for _ in range(3)]
    assert [r.status_code for r in replies] == [201, 201, 201]
    assert [r.headers.get("Idempotent-Replayed") for r in replies] == [None, "true", "true"]
    assert count(rt, CaseComment) == 1


def test_a_failed_request_stores_nothing_and_its_retry_runs(api, rt):
    case_no = api.register()["case_no"]
    task = api.open_task(case_no)
    path = f"/api/v1/tasks/{task['id']}/complete"
    bad = post(api, path, "yjp_acceptor", {"data": {"mediation_result": "maybe"}}, "k")
    assert bad.status_code == 422
    assert idempotency.count_keys(rt) == 0
    good = post(api, path, "yjp_acceptor", {"data": {"mediation_result": "unresolved"}}, "k")
    assert good.status_code == 200 and "Idempotent-Replayed" not in good.headers
    assert idempotency.count_keys(rt) == 1


def test_keys_expire_and_are_purged(api, rt, clock):
    assert post(api, CASES, "yjp_acceptor", intake_body(), "old").status_code == 201
    clock.advance(hours=23)
    assert post(api, CASES, "yjp_acceptor", intake_body(), "old").headers["Idempotent-Replayed"] == "true"
    clock.advance(hours=2)
    fresh = post(api, CASES, "yjp_acceptor", intake_body(), "old")
    assert fresh.status_code == 201 and "Idempotent-Replayed" not in fresh.headers
    assert count(rt, Case) == 2
    assert post(api, CASES, "yjp_acceptor2", intake_body(), "other").status_code == 201
    clock.advance(hours=25)
    assert idempotency.purge_expired(rt) == 2 and idempotency.count_keys(rt) == 0


def test_an_invalid_key_is_refused(api, rt):
    resp = post(api, CASES, "yjp_acceptor", intake_body(), "x" * 256)
    assert resp.status_code == 422 and "Idempotency-Key" in resp.get_json()["errors"]
    assert count(rt, Case) == 0


def test_the_action_and_its_stored_response_commit_together_or_not_at_all(rt):
    from engine.services.cases import start_case
    from tests.support import intake

    def acts_then_fails():
        start_case(rt, intake(), "acceptor")
        raise RuntimeError("the process died before answering")

    with pytest.raises(RuntimeError):
        run_once(rt, "user:a", "k1", "h", "POST", CASES, acts_then_fails)

    def acts_but_its_response_cannot_be_stored():
        start_case(rt, intake(), "acceptor")
        return StoredResponse(status=None, body="{}")  # NOT NULL: the key's row fails at flush

    with pytest.raises(Exception):
        run_once(rt, "user:a", "k2", "h", "POST", CASES, acts_but_its_response_cannot_be_stored)
    assert count(rt, Case) == 0 and idempotency.count_keys(rt) == 0

    def acts():
        return StoredResponse(201, {"Content-Type": "application/json"}, start_case(rt, intake(), "acceptor")["case_no"])

    first = run_once(rt, "user:a", "k3", "h", "POST", CASES, acts)
    assert run_once(rt, "user:a", "k3", "h", "POST", CASES, acts) == StoredResponse(201, first.headers, first.body,
                                                                                    replayed=True)
    assert count(rt, Case) == 1


@pytest.fixture
def server(app):
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, name="api-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    thread.join(timeout=10)


@pytest.mark.slow
def test_concurrent_requests_with_one_key_make_one_case(server, rt, demo):
    clients = 8
    headers = {"Authorization": f"Bearer {demo['yjp_acceptor']}"}
    for round_ in range(5):
        key = f"burst-{round_}"
        barrier = threading.Barrier(clients)
        results: list = [None] * clients

        def send(i: int) -> None:
            with requests.Session() as s:
                barrier.wait()
                results[i] = s.post(f"{server}{CASES}", json=intake_body(), timeout=60,
                                    headers={**headers, "Idempotency-Key": key})

        threads = [threading.Thread(target=send, args=(i,)) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        statuses = Counter(r.status_code for r in results)
        print(f"round {round_}: {dict(statuses)}")
        assert set(statuses) <= {201, 409} and statuses[201] >= 1, [r.text for r in results]
        for r in results:
            if r.status_code == 409:  # the first was still running: retry later, then get the replay
                assert r.json()["code"] == "idempotency_in_progress" and r.headers["Retry-After"] == "1"
        bodies = {r.text for r in results if r.status_code == 201}
        retried = requests.post(f"{server}{CASES}", json=intake_body(), timeout=60,
                                headers={**headers, "Idempotency-Key": key})
        assert retried.status_code == 201 and retried.headers["Idempotent-Replayed"] == "true"
        assert bodies == {retried.text}
        assert count(rt, Case) == round_ + 1


def test_a_deploy_upload_sent_twice_with_one_key_is_one_version(api, rt):
    import io

    standard = (rt.processes_dir / "dispute_urban_management.bpmn").read_bytes().replace("社区调解".encode(),
                                                                               "社区人民调解".encode())

    def deploy(content: bytes):
        return api.client.post("/api/v1/processes", content_type="multipart/form-data",
                               headers={**api.headers("designer"), "Idempotency-Key": "deploy-1"},
                               data={"file": [(io.BytesIO(content), "dispute_urban_management.bpmn")]})

    first, again = deploy(standard), deploy(standard)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json() == first.get_json()
    assert [r["version"] for r in first.get_json()] == [2]
    assert deploy(standard + b"\n").get_json()["code"] == "idempotency_key_reused"
    assert len(api.get("/api/v1/processes/dispute_urban_management/versions", "designer").get_json()) == 2
