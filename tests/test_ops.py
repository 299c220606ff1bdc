"""Operations endpoints on the real app: /readyz names what is not ready, /metrics counts what was done,
and every request carries an id into its response and into the engine's log lines."""
from __future__ import annotations

import json
import logging
import re
from datetime import timedelta

import pytest
from sqlalchemy import delete, text

from engine import logcontext
from engine.services import heartbeat
from engine.store.models import ProcessDefinition


def _sample(body: str, name: str, **labels) -> float | None:
    """The value of one sample of the Prometheus text `body` (labels in any order), or None."""
    for line in body.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return None


def test_readyz_names_the_timer_service_when_no_worker_beats(client, rt, clock):
    resp = client.get("/readyz")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["status"] == "not_ready" and body["failed"] == ["timers"]
    assert body["checks"]["database"]["ok"] and body["checks"]["schema"]["ok"]
    assert body["checks"]["schema"]["current"] == body["checks"]["schema"]["head"]
    from engine.services.processes import list_processes
    assert body["checks"]["definitions"] == {"ok": True, "deployed": len(list_processes(rt)), "missing": []}

    heartbeat.beat(rt, "worker-a")
    resp = client.get("/readyz")
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["checks"]["timers"]["workers"] == 1

    clock.advance(timedelta(seconds=31))  # past TIMER_HEARTBEAT_MAX_AGE (30 s)
    resp = client.get("/readyz")
    assert resp.status_code == 503 and resp.get_json()["failed"] == ["timers"]
    heartbeat.beat(rt, "worker-a")
    assert client.get("/readyz").status_code == 200
    heartbeat.forget(rt, "worker-a")
    assert client.get("/readyz").status_code == 503


def test_readyz_names_a_schema_behind_its_head_and_a_process_not_deployed(client, rt):
    heartbeat.beat(rt, "worker-a")
    with rt.db.write() as s:
        s.execute(delete(ProcessDefinition))
    body = client.get("/readyz").get_json()
    assert body["failed"] == ["definitions"]
    assert body["checks"]["definitions"]["missing"] == sorted({r.process for r in rt.tables.routes.values()})
    with rt.db.write() as s:
        head = s.scalar(text("SELECT version_num FROM alembic_version"))
        s.execute(text("UPDATE alembic_version SET version_num = 'd_outbox'"))
    try:
        resp = client.get("/readyz")
        assert resp.status_code == 503
        body = resp.get_json()
        assert body["failed"] == ["schema", "definitions"]
        assert body["checks"]["schema"]["current"] == ["d_outbox"] and body["checks"]["schema"]["head"] == [head]
    finally:
        with rt.db.write() as s:
            s.execute(text("UPDATE alembic_version SET version_num = :h"), {"h": head})


def test_metrics_count_requests_engine_steps_and_the_waiting_work(api, rt):
    before = api.client.get("/metrics").get_data(as_text=True)
    case = api.register()
    api.step(case["case_no"], "mediate")
    api.client.get("/api/v1/cases/NO-SUCH", headers=api.headers("jgzx_supervisor"))
    resp = api.client.get("/metrics")
    assert resp.status_code == 200 and resp.content_type.startswith("text/plain")
    body = resp.get_data(as_text=True)

    def grew(name, **labels):
        return (_sample(body, name, **labels) or 0) - (_sample(before, name, **labels) or 0)

    assert grew("dispute_http_request_seconds_count", endpoint="/api/v1/cases", method="POST", status="201") == 1
    assert grew("dispute_http_request_seconds_count", endpoint="/api/v1/tasks/<task_id>/complete",
                method="POST", status="200") == 1
    assert grew("dispute_http_request_seconds_count", endpoint="/api/v1/cases/<case_no>", method="GET",
                status="404") == 1
    assert grew("dispute_engine_step_seconds_count", operation="start_case", outcome="ok") == 1
    assert grew("dispute_engine_step_seconds_count", operation="complete_task", outcome="ok") == 1
    from sqlalchemy import func, select

    from engine.store.timer_models import CaseTimer

    with rt.db.read() as s:
        timers = s.scalar(select(func.count()).select_from(CaseTimer))
    assert timers > 0
    assert _sample(body, "dispute_timers_pending") == timers
    assert _sample(body, "dispute_timers_due") == 0 and _sample(body, "dispute_timer_lag_seconds") == 0
    assert _sample(body, "dispute_incidents_open") == 0
    assert _sample(body, "dispute_timer_workers_alive") == 0
    assert _sample(body, "dispute_outbox_backlog") is not None
    assert _sample(body, "dispute_db_pool_size") is not None


def test_due_timers_show_their_lag(api, rt, clock):
    api.register()
    clock.advance(timedelta(days=30))  # every deadline of the case is past, none fired
    body = api.client.get("/metrics").get_data(as_text=True)
    assert _sample(body, "dispute_timers_due") == _sample(body, "dispute_timers_pending") > 0
    assert _sample(body, "dispute_timer_lag_seconds") > 86400


def test_a_request_id_is_kept_or_made_and_reaches_the_engine_log(api):
    resp = api.client.get("/healthz", headers={"X-Request-Id": "edge-42.a:b"})
    assert resp.headers["X-Request-Id"] == "edge-42.a:b"
    made = api.client.get("/healthz", headers={"X-Request-Id": "no spaces allowed"}).headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert api.client.get("/healthz").headers["X-Request-Id"] != made

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep()
    handler.addFilter(logcontext.RequestIdFilter())
    engine_log = logging.getLogger("engine.services.observe")
    engine_log.addHandler(handler)
    old = engine_log.level
    engine_log.setLevel(logging.DEBUG)
    try:
        resp = api.client.post("/api/v1/cases", headers={**api.headers("yjp_acceptor"), "X-Request-Id": "req-7"},
                               json=__import__("tests.api_support", fromlist=["intake_body"]).intake_body())
    finally:
        engine_log.removeHandler(handler)
        engine_log.setLevel(old)
    assert resp.status_code == 201 and resp.headers["X-Request-Id"] == "req-7"
    lines = [r for r in records if r.getMessage().startswith("start_case ok")]
    assert [r.request_id for r in lines] == ["req-7"]
    assert logcontext.request_id.get() is None  # nothing leaks out of the request


def test_json_log_lines_carry_the_request_id():
    record = logging.LogRecord("engine.x", logging.WARNING, __file__, 1, "case %s stuck", ("2025-1",), None)
    token = logcontext.request_id.set("abc")
    try:
        logcontext.RequestIdFilter().filter(record)
    finally:
        logcontext.request_id.reset(token)
    line = json.loads(logcontext.JsonFormatter().format(record))
    assert line["message"] == "case 2025-1 stuck" and line["request_id"] == "abc"
    assert line["level"] == "WARNING" and line["logger"] == "engine.x"


@pytest.mark.parametrize("path", ["/readyz", "/metrics"])
def test_ops_endpoints_need_no_token(client, path):
    assert client.get(path).status_code in (200, 503)
