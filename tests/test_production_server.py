"""`flask serve --workers N` as a real process: gunicorn workers serve the app, the timer service runs once
beside them, /metrics sums every worker, logs are JSON lines with the request id, SIGTERM drains.

And `flask serve --no-timers`: the same app, no timer service (readyz says so) until a `flask timers run`
worker beats.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import sys
import time

import pytest
import requests
import sqlalchemy as sa

from tests.api_support import STEPS, intake_body
from tests.servers import Process, free_port, poll

pytestmark = pytest.mark.slow


def _rows(db_url, sql):
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).all()
    finally:
        engine.dispose()


def _count(body: str, endpoint: str) -> float:
    total = 0.0
    for line in body.splitlines():
        if line.startswith("dispute_http_request_seconds_count{") and f'endpoint="{endpoint}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture
def served(db_url, tmp_path):
    started = []

    def start(*args, **env):
        port = free_port()
        token_file = tmp_path / "demo_tokens.tsv"
        proc = Process(["serve", "--port", str(port), *args],
                       {"DATABASE_URL": db_url, "DEMO_TOKEN_FILE": str(token_file), "LOG_LEVEL": "INFO", **env},
                       tmp_path / f"serve-{len(started)}.log")
        started.append(proc)
        base = f"http://127.0.0.1:{port}"
        poll(lambda: proc.alive() and requests.get(f"{base}/healthz", timeout=5).ok, 120, "the server to answer")
        return proc, base

    yield start
    for proc in started:
        proc.stop(timeout=30)  # a graceful stop, which removes the metrics directory; SIGKILL after 30 s
        print(proc.output()[-4000:])


def _seed_demo(db_url, tmp_path) -> dict:
    proc = Process(["seed", "demo", "--token-file", str(tmp_path / "tokens.tsv")], {"DATABASE_URL": db_url},
                   tmp_path / "seed.log")
    assert proc.proc.wait(timeout=120) == 0, proc.output()
    proc.stop()
    return dict(line.split("\t") for line in (tmp_path / "tokens.tsv").read_text().splitlines())


def test_gunicorn_workers_serve_the_app_with_the_timer_service_once(served, db_url, tmp_path):
    server, base = served("--workers", "2", "--threads", "2")
    poll(lambda: requests.get(f"{base}/readyz", timeout=5).status_code == 200, 60, "readyz 200")
    # the timer service runs once, in the serve process itself, never in a gunicorn worker
    workers = _rows(db_url, "SELECT worker, pid FROM timer_worker")
    assert [pid for _, pid in workers] == [server.pid], workers

    # /metrics sums the counters of every worker (multiprocess mode): each of 40 requests counted once
    pids = set()
    for i in range(40):
        resp = requests.get(f"{base}/healthz", headers={"X-Request-Id": f"probe-{i}", "Connection": "close"},
                            timeout=10)
        assert resp.headers["X-Request-Id"] == f"probe-{i}" and resp.headers["Server"].startswith("gunicorn")
    body = requests.get(f"{base}/metrics", timeout=10).text
    assert _count(body, "/healthz") >= 40  # the readiness polls above went to /healthz too
    before = _count(body, "/healthz")
    for _ in range(10):
        requests.get(f"{base}/healthz", headers={"Connection": "close"}, timeout=10)
    assert _count(requests.get(f"{base}/metrics", timeout=10).text, "/healthz") == before + 10

    tokens = _seed_demo(db_url, tmp_path)
    case = requests.post(f"{base}/api/v1/cases", json=intake_body(), timeout=30,
                         headers={"Authorization": f"Bearer {tokens['yjp_acceptor']}", "X-Request-Id": "intake-1"})
    assert case.status_code == 201, case.text
    body = requests.get(f"{base}/metrics", timeout=10).text
    assert re.search(r'dispute_engine_step_seconds_count\{operation="start_case",outcome="ok"\} 1\.0', body)
    assert float(re.search(r"^dispute_timers_pending (\S+)$", body, re.M).group(1)) > 0

    # graceful stop: a request in flight at the signal (its body still coming) is answered in full,
    # and only then does the server exit; new connections are refused from then on
    body_bytes = json.dumps(intake_body()).encode()
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall((f"POST /api/v1/cases HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                  f"Authorization: Bearer {tokens['yjp_acceptor']}\r\nX-Request-Id: in-flight\r\n"
                  f"Content-Length: {len(body_bytes)}\r\nConnection: close\r\n\r\n").encode() + body_bytes[:20])
    time.sleep(1.0)  # a worker has taken the request and waits for the rest of its body
    server.proc.send_signal(signal.SIGTERM)
    poll(lambda: "Handling signal: term" in server.output(), 30, "gunicorn to take the signal")
    time.sleep(0.5)
    assert server.alive()
    sock.sendall(body_bytes[20:])
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    sock.close()
    assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["case_no"]
    assert server.stop(timeout=60) == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base}/healthz", timeout=5)
    out = server.output()
    assert "Handling signal: term" in out and "API server stopped (status 0)" in out
    assert _rows(db_url, "SELECT worker FROM timer_worker") == []  # the timer service stopped and said so

    # JSON log lines, the request id on the access line of the request it belongs to
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    intake_lines = [line for line in lines if line["request_id"] == "intake-1"]
    assert any(line["logger"] == "api.access" and "POST /api/v1/cases 201" in line["message"]
               for line in intake_lines), intake_lines


def test_no_timers_serves_the_same_app_until_a_timer_worker_beats(served, db_url, tmp_path):
    server, base = served("--no-timers", "--workers", "1")
    resp = requests.get(f"{base}/readyz", timeout=10)
    assert resp.status_code == 503 and resp.json()["failed"] == ["timers"]
    assert requests.get(f"{base}/api/openapi.json", timeout=10).json()["paths"]["/readyz"]
    worker = Process(["timers", "run"], {"DATABASE_URL": db_url}, tmp_path / "timers.log")
    try:
        poll(lambda: requests.get(f"{base}/readyz", timeout=5).status_code == 200, 60,
             "readyz 200 once `flask timers run` beats")
        assert [pid for (pid,) in _rows(db_url, "SELECT pid FROM timer_worker")] == [worker.pid]
    finally:
        assert worker.stop() == 0, worker.output()
    assert requests.get(f"{base}/readyz", timeout=10).status_code == 503


def _state_and_parent(pid) -> tuple[str, int] | None:
    """A process's state letter and parent pid, read from /proc; None when it is gone."""
    try:
        state, ppid = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[:2]
    except OSError:
        return None
    return state, int(ppid)


def _alive(pid: int) -> bool:
    """Running or sleeping: neither gone nor a zombie (exited, not yet reaped)."""
    found = _state_and_parent(pid)
    return found is not None and found[0] != "Z"


def _live_children(pid: int) -> list[int]:
    """The processes whose parent is `pid` and that have not exited."""
    found = ((int(entry), _state_and_parent(entry)) for entry in os.listdir("/proc") if entry.isdigit())
    return [child for child, seen in found if seen is not None and seen != ("Z", pid) and seen[1] == pid]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_killed_serve_takes_its_api_server_with_it(served):
    """SIGKILL (or the OOM killer) on `flask serve` leaves no orphaned gunicorn master holding the port, and no
    metrics directory behind."""
    server, base = served("--no-timers", "--workers", "1")
    master = _live_children(server.pid)
    assert len(master) == 1, master
    workers = _live_children(master[0])
    assert workers, "gunicorn has no worker"
    metrics_dir = re.search(r"^metrics: the workers' counters in (\S+) ", server.output(), re.M).group(1)
    assert os.path.isdir(metrics_dir)
    server.proc.kill()
    server.proc.wait(timeout=30)
    try:
        poll(lambda: not any(_alive(pid) for pid in master + workers), 60, "the master and its workers to exit")
    finally:  # should they not have gone, they go now rather than outlive the suite
        for pid in master + workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert not os.path.exists(metrics_dir), "the killed supervisor's metrics directory was left behind"

    def refused():
        try:
            requests.get(f"{base}/healthz", timeout=5)
        except requests.ConnectionError:
            return True
        return False

    assert refused(), "the port still answers after `flask serve` was killed"
