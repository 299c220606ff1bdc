"""Intake from integrated systems: idempotent by the system's reference, placed by the grid table, with callbacks.

Each database test runs on SQLite and PostgreSQL. The race test sends the
same submission from two real HTTP clients at one instant to a real threaded
server, twenty times over: one case each time, one 201 and one 200.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select
from werkzeug.serving import make_server

from engine.rules.grids import load_grids
from engine.rules.tables import load_tables
from engine.services import cases
from engine.services.clients import create_client
from engine.store.client_models import ApiClient, CaseSource
from engine.store.models import Case, Outbox
from tests.api_support import STEPS

ROOT = Path(__file__).resolve().parents[1]
CALLBACK = "https://hotline.example.cn/callbacks/dispute"


def submission(ref: str = "12345-20250303-0001", **overrides) -> dict:
    body = {"external_ref": ref, "title": "楼上漏水纠纷", "description": "市民来电：楼上装修导致漏水，协商未果。",
            "category": "urban_management", "reporter": {"name": "张三", "phone": "13812345678"},
            "location": {"address": "西陵区云集路12号", "grid": "YJP-03"}}
    body.update(overrides)
    return body


@pytest.fixture
def hotline(rt, demo):
    return create_client(rt, "hotline-12345", "intake", "hotline_12345", callback_url=CALLBACK,
                         callback_secret="s3cret-shared-with-12345")["api_key"]


def submit(client, key, body):
    return client.post("/api/v1/intake", json=body, headers={"X-Api-Key": key})


def count(rt, table) -> int:
    with rt.db.read() as s:
        return s.scalar(select(func.count()).select_from(table))


def test_the_same_reference_twice_is_one_case(client, rt, hotline):
    first = submit(client, hotline, submission())
    assert first.status_code == 201, first.get_json()
    again = submit(client, hotline, submission())
    assert again.status_code == 200 and again.get_json() == first.get_json()
    body = first.get_json()
    assert body["external_ref"] == "12345-20250303-0001" and body["channel"] == "hotline_12345"
    assert "reporter" not in body and "13812345678" not in json.dumps(body, ensure_ascii=False)
    assert count(rt, Case) == 1
    # A second system may use the same reference for its own case.
    police = create_client(rt, "police-110", "intake", "police_110")["api_key"]
    other = submit(client, police, submission())
    assert other.status_code == 201 and other.get_json()["case_no"] != body["case_no"]
    assert other.get_json()["channel"] == "police_110"
    assert count(rt, Case) == 2


@pytest.fixture
def server(app):
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, name="intake-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    thread.join(timeout=10)


@pytest.mark.slow
def test_two_simultaneous_submissions_make_one_case(server, rt, hotline):
    sessions = [requests.Session() for _ in range(2)]
    try:
        for session in sessions:
            session.headers["X-Api-Key"] = hotline
        for n in range(20):
            barrier = threading.Barrier(2)
            results: list = [None, None]

            def send(i: int) -> None:
                barrier.wait()
                results[i] = sessions[i].post(f"{server}/api/v1/intake", json=submission(f"R-{n}"), timeout=60)

            threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(r.status_code for r in results) == [200, 201], [r.text for r in results]
            assert results[0].json() == results[1].json()
    finally:
        for session in sessions:
            session.close()
    assert count(rt, Case) == 20 and count(rt, CaseSource) == 20


@pytest.mark.parametrize("location, community, grid, placement", [
    ({"address": "西陵区云集路12号", "grid": "YJP-03"}, "XL-XLJD-YJP", "YJP-03", "grid"),
    ({"address": "学院街道大学路5号", "lat": 30.71, "lon": 111.305}, "XL-XYJD-DXL", "DXL-01", "coordinates"),
    ({"address": "伍家岗区", "grid": "NO-SUCH", "lat": 30.655, "lon": 111.345}, "WJG-DGQ-WJP", "WJP-01",
     "coordinates"),
    ({"address": "宜昌市某处"}, "YC-RXZX", None, "default_desk"),
    ({"address": "城外", "lat": 31.5, "lon": 112.0}, "YC-RXZX", None, "default_desk"),
])
def test_location_decides_the_accepting_community(client, rt, hotline, location, community, grid, placement):
    resp = submit(client, hotline, submission(location=location))
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert (body["community"]["code"], body["grid"], body["placement"]) == (community, grid, placement)
    case = cases.get_case(rt, body["case_no"])
    assert case["community"] == community and case["open_tasks"][0]["unit"] == community
    assert case["open_tasks"][0]["element"] == "mediate"


def test_the_default_desk_works_its_cases(api, client, hotline):
    body = submit(client, hotline, submission(location={"address": "宜昌市某处"})).get_json()
    tasks = api.get(f"/api/v1/tasks?case={body['case_no']}", "rx_acceptor").get_json()["items"]
    assert [t["element"] for t in tasks] == ["mediate"]
    assert api.post(f"/api/v1/tasks/{tasks[0]['id']}/claim", "rx_acceptor").status_code == 200


def test_a_hotline_operator_registers_a_case_placed_by_its_location(api):
    body = {k: v for k, v in submission().items() if k != "external_ref"}
    resp = api.post("/api/v1/cases", "rx_acceptor", dict(body, channel="hotline_12345",
                                                          location={"address": "大学路", "lat": 30.71, "lon": 111.305}))
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["community"] == "XL-XYJD-DXL"
    named = api.post("/api/v1/cases", "rx_acceptor", dict(body, channel="hotline_12345", community="XL-XLJD-TJY"))
    assert named.status_code == 201 and named.get_json()["community"] == "XL-XLJD-TJY"
    # Without the acceptor role a department cannot register cases; a community acceptor only for their own.
    assert api.post("/api/v1/cases", "cgj_handler", dict(body, channel="walk_in")).status_code == 403
    assert api.post("/api/v1/cases", "yjp_acceptor", dict(body, channel="walk_in", community="XL-XLJD-TJY")
                    ).status_code == 403


def _webhooks(rt) -> list:
    with rt.db.read() as s:
        return s.execute(select(Outbox.recipient_kind, Outbox.recipient, Outbox.status, Outbox.message)
                         .where(Outbox.channel == "webhook").order_by(Outbox.id)).all()


def test_status_changes_queue_callbacks_to_the_source_system(api, client, rt, hotline):
    case_no = submit(client, hotline, submission()).get_json()["case_no"]
    assert _webhooks(rt) == []  # the submission itself was answered synchronously
    seen = ["mediating"]
    for _ in STEPS:
        case = api.case(case_no)
        if case["status"] == "closed":
            break
        task = case["open_tasks"][0]
        user, data = STEPS[task["element"]]
        case = api.post(f"/api/v1/tasks/{task['id']}/complete", user, {"data": data}).get_json()
        if case["status"] != seen[-1]:
            seen.append(case["status"])
    rows = _webhooks(rt)
    bodies = [json.loads(r.message) for r in rows]
    assert [(b["previous_status"], b["status"]) for b in bodies] == list(zip(seen, seen[1:]))
    assert seen[-1] == "closed" and len(rows) >= 4
    assert {(r.recipient_kind, r.recipient, r.status) for r in rows} == {("api_client", "hotline-12345", "pending")}
    assert {b["case_no"] for b in bodies} == {case_no}
    assert {b["external_ref"] for b in bodies} == {"12345-20250303-0001"}
    assert "13812345678" not in " ".join(r.message for r in rows)


def test_no_callbacks_without_a_callback_url_or_a_source(api, client, rt):
    quiet = create_client(rt, "grid-app", "intake", "grid_worker")["api_key"]
    for case_no in (submit(client, quiet, submission()).get_json()["case_no"], api.register()["case_no"]):
        task = api.case(case_no)["open_tasks"][0]
        done = api.post(f"/api/v1/tasks/{task['id']}/complete", "yjp_acceptor",
                        {"data": {"mediation_result": "unresolved"}})
        assert done.get_json()["status"] == "signing"
    assert _webhooks(rt) == []


def test_bad_submissions_are_refused_and_change_nothing(client, rt, hotline, demo):
    assert submit(client, None, submission()).status_code == 401
    assert submit(client, "sys_wrong", submission()).status_code == 401
    open311_key = create_client(rt, "citizen-app", "open311", "web")["api_key"]
    assert submit(client, open311_key, submission()).status_code == 403
    resp = submit(client, hotline, submission(external_ref="has space", category="no_such", reporter={"name": ""}))
    assert resp.status_code == 422
    assert set(resp.get_json()["errors"]) == {"external_ref", "reporter.name", "reporter.phone"}
    resp = submit(client, hotline, submission(category="no_such"))
    assert resp.status_code == 422 and "category" in resp.get_json()["errors"]
    assert count(rt, Case) == 0 and count(rt, CaseSource) == 0


def test_api_keys_are_managed_by_administrators(api, rt, app):
    body = {"name": "legal-12348", "kind": "intake", "channel": "hotline_12348", "callback_url": CALLBACK,
            "callback_secret": "another-long-secret"}
    assert api.post("/api/v1/admin/apikeys", "yjp_acceptor", body).status_code == 403
    created = api.post("/api/v1/admin/apikeys", "admin", body)
    assert created.status_code == 201, created.get_json()
    key = created.get_json()["api_key"]
    listed = api.get("/api/v1/admin/apikeys", "admin").get_json()
    assert [c["name"] for c in listed] == ["legal-12348"] and "api_key" not in listed[0]
    assert "callback_secret" not in listed[0] and listed[0]["has_callback_secret"] is True
    with rt.db.read() as s:
        stored = s.scalar(select(ApiClient))
        assert stored.key_hash != key and len(stored.key_hash) == 64 and key not in stored.key_hash
    assert api.post("/api/v1/admin/apikeys", "admin", dict(body, channel="fax")).status_code == 422
    assert api.post("/api/v1/admin/apikeys", "admin", body).status_code == 422  # the name is taken
    revoked = api.post(f"/api/v1/admin/apikeys/{listed[0]['id']}/revoke", "admin")
    assert revoked.status_code == 200 and revoked.get_json()["revoked"] is True
    assert api.client.post("/api/v1/intake", json=submission(), headers={"X-Api-Key": key}).status_code == 401
    assert api.post("/api/v1/admin/apikeys/nobody/revoke", "admin").status_code == 404


def test_apikeys_command_line(app, rt):
    runner = app.test_cli_runner()
    made = runner.invoke(args=["apikeys", "create", "hotline-12345", "--kind", "intake", "--channel",
                               "hotline_12345", "--callback-url", CALLBACK, "--callback-secret", "x" * 20])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("sys_")
    listed = runner.invoke(args=["apikeys", "list"])
    assert "hotline-12345" in listed.output and key not in listed.output
    bad = runner.invoke(args=["apikeys", "create", "x", "--kind", "intake", "--channel", "fax"])
    assert bad.exit_code == 1 and "channel" in bad.output and "Traceback" not in bad.output
    assert runner.invoke(args=["apikeys", "revoke", "hotline-12345"]).exit_code == 0
    missing = runner.invoke(args=["apikeys", "revoke", "nobody"])
    assert missing.exit_code == 1 and "does not exist" in missing.output


def test_the_grid_table_is_checked_when_loaded(tmp_path):
    tables = load_tables(ROOT / "processes")
    assert tables.grids.default_desk == "YC-RXZX"
    assert tables.grids.place("YJP-02").community == "XL-XLJD-YJP"
    assert tables.grids.place(None, 30.655, 111.335).grid == "GXL-01"
    bad = tmp_path / "grids.toml"
    for text, problem in (('[[grids]]\ncode = "A"\ncommunity = "XL"\nbbox = [1, 1, 2, 2]\n', "not a community"),
                          ('[[grids]]\ncode = "A"\ncommunity = "XL-XLJD-YJP"\nbbox = [2, 1, 1, 2]\n', "empty"),
                          ('default_desk = "NOWHERE"\n', "default_desk"),
                          ('[[grids]]\ncode = "A"\ncommunity = "XL-XLJD-YJP"\nbbox = [1, 1]\n', "bbox must be")):
        bad.write_text(text)
        with pytest.raises(ValueError, match=problem):
            load_grids(tmp_path, tables.units)


def test_submissions_are_rate_limited_per_key(db_url, clock):
    from app import create_app, db, runtime_of
    from engine.services.processes import deploy_paths

    app = create_app({"SQLALCHEMY_DATABASE_URI": db_url, "TESTING": True, "INTAKE_RATE_LIMIT": "2 per minute"})
    try:
        rt = runtime_of(app)
        deploy_paths(rt, None, "tests")
        first, second = (create_client(rt, name, "intake", "hotline_12345")["api_key"] for name in ("a", "b"))
        client = app.test_client()
        statuses = [submit(client, first, submission(f"L-{i}")).status_code for i in range(3)]
        assert statuses == [201, 201, 429]
        assert submit(client, second, submission("L-9")).status_code == 201
        assert count(rt, Case) == 3
    finally:
        with app.app_context():
            db.engine.dispose()
