"""Open311 GeoReport v2: through a real client (georeport, from PyPI) against a server process, and by schema.

The server is `flask serve --no-timers` in its own process on the test
database. georeport speaks GET (services, service definitions, requests, one
request) in both formats; it has no POST, so the request is posted the way
the specification says (a form-encoded POST with `api_key`) with `requests`.
The schema checks parse the XML with lxml and check the JSON shapes; the
closed-case mapping walks a case through the whole procedure in-process.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from georeport import GeoReport
from lxml import etree
from sqlalchemy import func, select

from engine.services.clients import create_client
from engine.store.client_models import CaseSource
from engine.store.models import Case
from tests.api_support import STEPS

ROOT = Path(__file__).resolve().parents[1]
BASE = "/open311/v2"
PHONE, NAME, EMAIL = "13812345678", "张三", "zhang@example.cn"
# Inside grid YJP-01 of processes/grids.toml: 云集路社区, whose cases of urban_management go to 市城管局.
LAT, LONG = 30.697, 111.282
REQUEST_KEYS = ["service_request_id", "status", "status_notes", "service_name", "service_code", "description",
                "agency_responsible", "service_notice", "requested_datetime", "updated_datetime",
                "expected_datetime", "address", "address_id", "zipcode", "lat", "long", "media_url"]
SERVICE_KEYS = ["service_code", "service_name", "description", "metadata", "type", "keywords", "group"]


def post_form(**overrides) -> dict:
    form = {"service_code": "urban_management", "lat": str(LAT), "long": str(LONG),
            "address_string": "西陵区云集路8号", "description": "路灯损坏，夜间无照明", "first_name": NAME,
            "phone": PHONE, "email": EMAIL, "media_url": "https://img.example.cn/lamp.jpg",
            "attribute[title]": "路灯损坏"}
    form.update(overrides)
    return {k: v for k, v in form.items() if v is not None}


def count_cases(rt) -> int:
    with rt.db.read() as s:
        return s.scalar(select(func.count()).select_from(Case))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(app, db_url):
    """`flask serve --no-timers` in its own process, on the test database."""
    port = _free_port()
    env = dict(os.environ, DATABASE_URL=db_url, LOG_LEVEL="WARNING")
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "serve", "--no-timers", "--port",
                             str(port)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the server did not start: {proc.stderr.read() if proc.poll() is not None else ''}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


@pytest.fixture
def key(rt):
    return create_client(rt, "citizen-app", "open311", "web")["api_key"]


def _parse(fmt: str, resp):
    if fmt == "json":
        assert resp.headers["Content-Type"].startswith("application/json")
        return resp.json()
    assert resp.headers["Content-Type"].startswith("text/xml")
    assert resp.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    return etree.fromstring(resp.content)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_round_trip_through_the_georeport_client(server, rt, key, fmt):
    client = GeoReport(f"{server}{BASE}", api_key=key, output_format=fmt)

    services = client.get_service_list()
    assert {s["service_code"] for s in services} == set(rt.tables.routes)
    lamp = next(s for s in services if s["service_code"] == "urban_management")
    assert lamp["service_name"] == "城市管理" and lamp["metadata"] in (True, "true")
    definition = client.get_service_definition("urban_management")
    attributes = definition["attributes"] if fmt == "json" else definition["attributes"]["attribute"]
    assert [a["code"] for a in attributes] == ["title", "grid", "id_no"]

    posted = requests.post(f"{server}{BASE}/requests.{fmt}", data=dict(post_form(), api_key=key), timeout=30)
    assert posted.status_code == 201, posted.text
    body = _parse(fmt, posted)
    request_id = body[0]["service_request_id"] if fmt == "json" else body.findtext("request/service_request_id")
    token = body[0]["token"] if fmt == "json" else body.findtext("request/token")

    one = client.get_service_request(request_id)
    assert one["service_request_id"] == request_id
    assert one["status"] == "open" and one["service_code"] == "urban_management"
    assert one["agency_responsible"] == "云集路社区"  # first contact: the community the coordinates lie in
    assert one["description"] == "路灯损坏，夜间无照明"
    assert one["media_url"] == "https://img.example.cn/lamp.jpg"
    assert float(one["lat"]) == LAT and float(one["long"]) == LONG
    assert one["expected_datetime"]  # the working-day deadline of the open step
    listed = client.get_service_requests(service_code="urban_management", status="open")
    listed = listed if isinstance(listed, list) else [listed]
    assert [r["service_request_id"] for r in listed] == [request_id]
    closed = _parse(fmt, requests.get(f"{server}{BASE}/requests.{fmt}?status=closed", timeout=30))
    assert len(closed) == 0  # georeport cannot read an empty XML list (xmltodict gives None): read it directly
    by_token = requests.get(f"{server}{BASE}/tokens/{token}.json", timeout=30).json()
    assert by_token == [{"service_request_id": request_id, "token": token}]

    # No personal data in any GET answer, in either format.
    for path in (f"requests/{request_id}.{fmt}", f"requests.{fmt}", f"requests.{fmt}?service_request_id={request_id}"):
        text = requests.get(f"{server}{BASE}/{path}", timeout=30).text
        assert PHONE not in text and "5678" not in text and NAME not in text and EMAIL not in text
    with rt.db.read() as s:
        case = s.scalar(select(Case).where(Case.case_no == request_id))
        assert (case.channel, case.community_code, case.grid, case.reporter_phone) == \
            ("web", "XL-XLJD-YJP", "YJP-01", PHONE)


def test_services_and_definitions_by_schema(client, rt):
    data = client.get(f"{BASE}/services.json").get_json()
    assert isinstance(data, list) and [list(s) for s in data] == [SERVICE_KEYS] * len(rt.tables.routes)
    assert all(s["metadata"] is True and s["type"] == "realtime" for s in data)
    root = etree.fromstring(client.get(f"{BASE}/services.xml").data)
    assert root.tag == "services" and len(root) == len(rt.tables.routes)
    assert {[c.tag for c in s] == SERVICE_KEYS for s in root} == {True}
    assert root.findtext("service[service_code='family']/metadata") == "true"

    definition = client.get(f"{BASE}/services/family.json").get_json()
    assert list(definition) == ["service_code", "attributes"] and definition["service_code"] == "family"
    for order, attr in enumerate(definition["attributes"], 1):
        assert list(attr) == ["variable", "code", "datatype", "required", "datatype_description", "order",
                              "description", "values"]
        assert attr["order"] == order and attr["datatype"] == "string" and attr["required"] is False
    assert definition["attributes"][0]["datatype_description"] == "at most 200 characters"
    root = etree.fromstring(client.get(f"{BASE}/services/family.xml").data)
    assert root.tag == "service_definition" and root.findtext("service_code") == "family"
    assert [a.findtext("code") for a in root.iterfind("attributes/attribute")] == ["title", "grid", "id_no"]


def test_requests_by_schema_and_a_closed_case(client, api, rt, key):
    resp = client.post(f"{BASE}/requests.xml", data=dict(post_form(), api_key=key))
    root = etree.fromstring(resp.data)
    assert resp.status_code == 201 and root.tag == "service_requests"
    assert [c.tag for c in root.find("request")] == ["service_request_id", "token", "service_notice", "account_id"]
    request_id = root.findtext("request/service_request_id")

    # The case goes the whole way: mediation fails, 市城管局 handles, its leader approves, the reply is given.
    for _ in STEPS:
        case = api.case(request_id)
        if case["status"] == "closed":
            break
        task = case["open_tasks"][0]
        user, data = STEPS[task["element"]]
        done = api.post(f"/api/v1/tasks/{task['id']}/complete", user, {"data": data})
        assert done.status_code == 200, done.get_json()
    assert api.case(request_id)["status"] == "closed"

    [one] = client.get(f"{BASE}/requests/{request_id}.json").get_json()
    assert list(one) == REQUEST_KEYS
    assert one["status"] == "closed" and one["status_notes"] == "已责令整改，漏水已修复"  # the unified reply
    assert one["agency_responsible"] == "宜昌市城市管理局" and one["expected_datetime"] is None
    root = etree.fromstring(client.get(f"{BASE}/requests/{request_id}.xml").data)
    assert [c.tag for c in root.find("request")] == REQUEST_KEYS
    assert root.findtext("request/status") == "closed"
    closed = client.get(f"{BASE}/requests.json?status=closed&service_code=urban_management").get_json()
    assert [r["service_request_id"] for r in closed] == [request_id]
    assert client.get(f"{BASE}/requests.json?status=open").get_json() == []


def test_only_open311_requests_are_published(client, api, key):
    registered = api.register()  # at the community's desk: a dispute, not a public request
    assert client.get(f"{BASE}/requests/{registered['case_no']}.json").status_code == 404
    assert client.get(f"{BASE}/requests.json?service_request_id={registered['case_no']}").get_json() == []


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_bad_service_code(client, rt, key, fmt):
    def errors(resp, status):
        assert resp.status_code == status
        if fmt == "json":
            body = resp.get_json()
            assert isinstance(body, list) and all(list(e) == ["code", "description"] for e in body)
            return [(e["code"], e["description"]) for e in body]
        root = etree.fromstring(resp.data)
        assert root.tag == "errors" and [c.tag for c in root[0]] == ["code", "description"]
        return [(int(e.findtext("code")), e.findtext("description")) for e in root.iterfind("error")]

    assert errors(client.get(f"{BASE}/services/no_such.{fmt}"), 404) == [(404, "service_code no_such was not found")]
    [(code, text)] = errors(client.post(f"{BASE}/requests.{fmt}", data=dict(post_form(service_code="no_such"),
                                                                            api_key=key)), 400)
    assert code == 400 and "no_such" in text
    [(code, text)] = errors(client.get(f"{BASE}/requests.{fmt}?service_code=no_such"), 400)
    assert code == 400 and "no_such" in text
    [(code, text)] = errors(client.post(f"{BASE}/requests.{fmt}", data=dict(post_form(service_code=None),
                                                                            api_key=key)), 400)
    assert text == "service_code was not provided"
    assert count_cases(rt) == 0


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_missing_or_bad_api_key(client, rt, fmt):
    intake_key = create_client(rt, "hotline", "intake", "hotline_12345")["api_key"]
    for form, text in ((post_form(), "api_key was not provided"),
                       (dict(post_form(), api_key="o311_not-a-key"), "api_key is not valid"),
                       (dict(post_form(), api_key=intake_key), "for intake, not open311")):
        resp = client.post(f"{BASE}/requests.{fmt}", data=form)
        assert resp.status_code == 403
        if fmt == "json":
            [error] = resp.get_json()
            assert error["code"] == 403 and text in error["description"]
        else:
            root = etree.fromstring(resp.data)
            assert root.findtext("error/code") == "403" and text in root.findtext("error/description")
    assert count_cases(rt) == 0


def test_invalid_requests_name_the_parameter(client, rt, key):
    resp = client.post(f"{BASE}/requests.json", data=dict(post_form(phone=None, description=None), api_key=key))
    assert resp.status_code == 400
    texts = sorted(e["description"] for e in resp.get_json())
    assert [t.split(":")[0] for t in texts] == ["description", "phone"]
    resp = client.post(f"{BASE}/requests.json", data=dict(post_form(lat=None, long=None, address_string=None),
                                                          api_key=key))
    assert resp.status_code == 400 and "location" in resp.get_json()[0]["description"]
    resp = client.post(f"{BASE}/requests.json", data=dict(post_form(**{"attribute[colour]": "red"}), api_key=key))
    assert resp.status_code == 400 and "attribute[colour]" in resp.get_json()[0]["description"]
    assert client.get(f"{BASE}/requests.json?start_date=yesterday").status_code == 400
    assert client.get(f"{BASE}/requests.json?start_date=2026-01-01T00:00:00Z&end_date=2026-06-01T00:00:00Z"
                      ).status_code == 400  # more than 90 days
    assert client.get(f"{BASE}/requests.json?status=pending").status_code == 400
    assert client.get(f"{BASE}/requests/2026-999999.json").get_json() == [
        {"code": 404, "description": "service request 2026-999999 was not found"}]
    assert client.get(f"{BASE}/tokens/nope.xml").status_code == 404
    assert count_cases(rt) == 0
    with rt.db.read() as s:
        assert s.scalar(select(func.count()).select_from(CaseSource)) == 0


def test_posts_are_rate_limited_per_key(db_url, clock):
    from app import create_app, db, runtime_of
    from engine.services.processes import deploy_paths
    from engine.services.seed import seed_demo

    app = create_app({"SQLALCHEMY_DATABASE_URI": db_url, "TESTING": True, "OPEN311_RATE_LIMIT": "2 per minute"})
    try:
        rt = runtime_of(app)
        deploy_paths(rt, None, "tests")
        seed_demo(rt)
        first, second = (create_client(rt, name, "open311", "web")["api_key"] for name in ("app-a", "app-b"))
        client = app.test_client()
        statuses = [client.post(f"{BASE}/requests.json", data=dict(post_form(), api_key=first)).status_code
                    for _ in range(3)]
        assert statuses == [201, 201, 429]
        limited = client.post(f"{BASE}/requests.xml", data=dict(post_form(), api_key=first))
        assert limited.status_code == 429 and etree.fromstring(limited.data).findtext("error/code") == "429"
        assert client.post(f"{BASE}/requests.json", data=dict(post_form(), api_key=second)).status_code == 201
        assert count_cases(rt) == 3
    finally:
        with app.app_context():
            db.engine.dispose()
