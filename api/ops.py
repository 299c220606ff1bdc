"""GET /readyz and GET /metrics, and what every request leaves behind: its id, its latency, a log line.

- Request id: a request's `X-Request-Id` (up to 128 letters, digits and
  `._:-`), or a new one, is returned in the response's `X-Request-Id` and put
  in engine.logcontext, so every log line written while serving it (the API's,
  the engine's, a handler's) names it.
- `/readyz` (no token): 200 when the database answers, the schema is at the
  migrations' head, every routed process is deployed and a timer worker beat
  recently (TIMER_HEARTBEAT_MAX_AGE); else 503, the body naming what failed.
  `/healthz` stays the liveness check (the process and its database).
- `/metrics` (no token, Prometheus text): request latency by endpoint, method
  and status; engine step latency by operation (engine.services.observe);
  database pool use per process; and, read from the database at each scrape,
  timers pending, due and the lag of the oldest due one, timer workers alive,
  the outbox backlog and the incidents open. Under gunicorn each worker
  writes its counters to PROMETHEUS_MULTIPROC_DIR (set by `flask serve`) and
  any worker's scrape sums them all.
prometheus_client is imported on first use, never at app creation, so that a
process that sets PROMETHEUS_MULTIPROC_DIR after creating the app (a forked
worker) still counts in multiprocess mode.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
import uuid

from flask import Response, current_app, g, jsonify, request
from marshmallow import Schema, fields

from api.auth import runtime
from api.parsing import Blueprint
from engine import logcontext
from engine.services.ops import backlog, readiness
from engine.services.heartbeat import timer_service_state

blp = Blueprint("ops", __name__, description="Readiness and Prometheus metrics, for operators and load balancers")
log = logging.getLogger("api.access")
REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_metrics: dict = {}
_metrics_made = threading.Lock()  # a worker's threads meet the first request together


def metrics() -> dict:
    """The process's metric objects, made on first use (see the module docstring)."""
    if _metrics:
        return _metrics
    with _metrics_made:
        if _metrics:
            return _metrics
        from prometheus_client import CollectorRegistry, Gauge, Histogram

        multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        registry = None if multiprocess else CollectorRegistry()
        kw = {"registry": registry} if registry is not None else {}
        _metrics.update(
            registry=registry,
            request=Histogram("dispute_http_request_seconds", "HTTP request latency",
                              ["endpoint", "method", "status"], buckets=LATENCY_BUCKETS, **kw),
            step=Histogram("dispute_engine_step_seconds", "Engine operation latency (one unit of work)",
                           ["operation", "outcome"], buckets=LATENCY_BUCKETS, **kw),
            pool_out=Gauge("dispute_db_pool_checked_out", "Database connections in use, summed over live workers",
                           multiprocess_mode="livesum", **kw),
            pool_size=Gauge("dispute_db_pool_size", "Database pool size, summed over live workers",
                            multiprocess_mode="livesum", **kw),
        )
    return _metrics


def observe_step(operation: str, seconds: float, outcome: str) -> None:
    metrics()["step"].labels(operation, outcome).observe(seconds)


def _pool_figures() -> None:
    pool = runtime().db.engine.pool
    m = metrics()
    if hasattr(pool, "checkedout"):
        m["pool_out"].set(pool.checkedout())
    if hasattr(pool, "size"):
        m["pool_size"].set(pool.size())


class ReadyCheck(Schema):
    ok = fields.Boolean(required=True)
    error = fields.String()


class ReadyOut(Schema):
    status = fields.String(metadata={"enum": ["ready", "not_ready"]})
    failed = fields.List(fields.String(metadata={"enum": ["database", "schema", "definitions", "timers"]}))
    checks = fields.Dict(keys=fields.String(), values=fields.Dict(),
                         metadata={"description": "database, schema, definitions, timers: each {ok, ...}"})


def _heads() -> set[str]:
    heads = current_app.extensions.get("dispute_migration_heads")
    if heads is None:
        from alembic.script import ScriptDirectory

        heads = set(ScriptDirectory(current_app.extensions["migrate"].directory).get_heads())
        current_app.extensions["dispute_migration_heads"] = heads
    return heads


@blp.route("/readyz", methods=["GET"])
@blp.doc(security=[], responses={"503": {"description": "not ready: `failed` names the checks that failed",
                                         "content": {"application/json": {"schema": ReadyOut}}}})
@blp.response(200, ReadyOut)
def readyz():
    """Ready to serve: database, schema at head, processes deployed, timer service beating; else 503"""
    body = readiness(runtime(), _heads(), current_app.config.get("TIMER_HEARTBEAT_MAX_AGE", 30.0))
    return (body, 200) if not body["failed"] else (jsonify(body), 503)


@blp.route("/metrics", methods=["GET"])
@blp.doc(security=[], responses={"200": {"description": "Prometheus text exposition format 0.0.4",
                                         "content": {"text/plain": {"schema": {"type": "string"}}}}})
def metrics_view():
    """Prometheus metrics: requests, engine steps, pool, timers, outbox and incidents"""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.core import GaugeMetricFamily

    m = metrics()
    _pool_figures()
    if m["registry"] is None:
        from prometheus_client import multiprocess

        counted = CollectorRegistry()
        multiprocess.MultiProcessCollector(counted)
    else:
        counted = m["registry"]
    rt = runtime()
    figures = backlog(rt)
    alive = timer_service_state(rt, current_app.config.get("TIMER_HEARTBEAT_MAX_AGE", 30.0))["workers"]
    read = CollectorRegistry()

    class Figures:
        def collect(self):
            for name, value, help_ in (
                    ("dispute_timers_pending", figures["timers_pending"], "Timers waiting to fire"),
                    ("dispute_timers_due", figures["timers_due"], "Timers due now and not yet fired"),
                    ("dispute_timer_lag_seconds", figures["timer_lag_seconds"],
                     "How long the oldest due timer has been waiting"),
                    ("dispute_timer_workers_alive", alive, "Timer workers with a recent heartbeat"),
                    ("dispute_outbox_backlog", figures["outbox_backlog"], "Outbox messages not yet delivered"),
                    ("dispute_incidents_open", figures["incidents_open"], "Incidents open")):
                yield GaugeMetricFamily(name, help_, value=value)

    read.register(Figures())
    return Response(generate_latest(counted) + generate_latest(read), 200, {"Content-Type": CONTENT_TYPE_LATEST})


def init_app(app) -> None:
    """The request hooks (id, latency, access line) and the step-latency observer."""
    rt = app.extensions["dispute_runtime"]
    if observe_step not in rt.observers:
        rt.observers.append(observe_step)

    @app.before_request
    def _begin():
        given = request.headers.get("X-Request-Id", "")
        g.request_id = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        g.request_token = logcontext.request_id.set(g.request_id)
        g.request_started = time.perf_counter()

    @app.after_request
    def _end(response):
        rid = g.get("request_id")
        if rid is None:
            return response
        response.headers["X-Request-Id"] = rid
        elapsed = time.perf_counter() - g.request_started
        endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
        metrics()["request"].labels(endpoint, request.method, str(response.status_code)).observe(elapsed)
        _pool_figures()
        log.info("%s %s %s %.1f ms", request.method, request.path, response.status_code, elapsed * 1000)
        return response

    @app.teardown_request
    def _teardown(_exc):
        token = g.pop("request_token", None)
        if token is not None:
            try:
                logcontext.request_id.reset(token)
            except ValueError:  # reset from another context: nothing to undo
                pass
