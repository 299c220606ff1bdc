"""Rate limits on public tracking and on failed sign-ins: in memory, in Redis, and through a real server.

Observed on main before this: 200 wrong tracking guesses in 1.6 s, all
answered, no limit. Now each client address gets 20 look-ups and 10 refused
tokens a minute (configurable); beyond that a 429 `rate_limited` with
Retry-After, also for the right code or a valid token, so guessing learns
nothing more. Redis at 127.0.0.1:6379 (REDIS_URL) holds the counts shared
by every worker; each test uses its own key prefix there.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
import requests

from api.limits import limiter
from tests.api_support import intake_body

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
OTHER = {"REMOTE_ADDR": "10.1.2.3"}


def _refused(resp) -> int:
    assert resp.status_code == 429, resp.get_data(as_text=True)
    assert resp.get_json() == {"code": "rate_limited", "errors": {}, "message": resp.get_json()["message"]}
    retry_after = int(resp.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    return retry_after


def _app(db_url, **config):
    from app import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": db_url, "TESTING": True, **config})


@pytest.fixture
def redis_config():
    prefix = f"test-limits-{uuid.uuid4().hex[:12]}"
    yield {"RATELIMIT_STORAGE_URI": REDIS_URL, "RATELIMIT_STORAGE_OPTIONS": {"key_prefix": prefix}}, prefix
    conn = redis.Redis.from_url(REDIS_URL)
    for key in conn.scan_iter(f"{prefix}*"):
        conn.delete(key)


# -- public tracking ------------------------------------------------------------------------------


def test_two_hundred_guesses_are_cut_off_after_twenty(api):
    code = api.register()["tracking_code"]
    answers = [api.client.get(f"/api/v1/track/GUESS{i:07d}").status_code for i in range(200)]
    assert answers[:20] == [404] * 20 and answers[20:] == [429] * 180
    _refused(api.client.get(f"/api/v1/track/{code}"))  # the right code too: the guesser learns nothing
    assert api.client.get(f"/api/v1/track/{code}", environ_base=OTHER).status_code == 200  # per address


def test_the_tracking_limit_is_configurable(db_url, clock, demo):
    app = _app(db_url, RATELIMIT_TRACKING="3 per minute")
    client = app.test_client()
    assert [client.get("/api/v1/track/ZZZZZZZZZZZZ").status_code for _ in range(4)] == [404, 404, 404, 429]


def test_a_limit_that_is_not_a_limit_is_refused_at_start(db_url, monkeypatch):
    monkeypatch.setenv("RATELIMIT_FAILED_SIGNIN", "ten a minute")
    with pytest.raises(ValueError, match="RATELIMIT_FAILED_SIGNIN"):
        _app(db_url)


# -- failed sign-ins ------------------------------------------------------------------------------


def test_ten_refused_tokens_lock_the_address_out_for_the_window(api):
    bad = {"Authorization": "Bearer not-a-token"}
    assert [api.client.get("/api/v1/me", headers=bad).status_code for _ in range(10)] == [401] * 10
    _refused(api.client.get("/api/v1/me", headers=bad))
    _refused(api.get("/api/v1/me", "yjp_acceptor"))  # a valid token from that address too
    _refused(api.client.post("/api/v1/cases", headers={"Authorization": "Basic eDp5"}, json={}))
    assert api.get("/api/v1/me", "yjp_acceptor", environ_base=OTHER).status_code == 200
    assert api.client.get("/healthz").status_code == 200  # only authenticated requests are locked


def test_successful_and_tokenless_requests_do_not_count(api):
    for _ in range(30):
        assert api.get("/api/v1/me", "yjp_acceptor").status_code == 200
        assert api.client.get("/api/v1/me").status_code == 401  # no credential presented: not a sign-in
    bad = {"Authorization": "Bearer not-a-token"}
    assert [api.client.get("/api/v1/tasks", headers=bad).status_code for _ in range(10)] == [401] * 10
    _refused(api.client.get("/api/v1/tasks", headers=bad))


def test_rate_limits_can_be_turned_off(db_url, clock, demo):
    client = _app(db_url, RATELIMIT_ENABLED=False).test_client()
    bad = {"Authorization": "Bearer not-a-token"}
    assert {client.get("/api/v1/me", headers=bad).status_code for _ in range(30)} == {401}
    assert {client.get("/api/v1/track/ZZZZZZZZZZZZ").status_code for _ in range(30)} == {404}


# -- storages -------------------------------------------------------------------------------------


def test_in_memory_by_default_and_redis_when_redis_url_is_set(db_url, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("RATELIMIT_STORAGE_URI", raising=False)
    assert _app(db_url).config["RATELIMIT_STORAGE_URI"] == "memory://"
    assert type(limiter.storage).__name__ == "MemoryStorage"
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    assert _app(db_url).config["RATELIMIT_STORAGE_URI"] == REDIS_URL
    assert type(limiter.storage).__name__ == "RedisStorage" and limiter.storage.check()


def test_counts_in_redis_are_shared_by_every_worker(db_url, clock, demo, redis_config):
    config, prefix = redis_config
    first = _app(db_url, **config).test_client()
    assert [first.get("/api/v1/track/ZZZZZZZZZZZZ").status_code for _ in range(12)] == [404] * 12
    bad = {"Authorization": "Bearer not-a-token"}
    assert [first.get("/api/v1/me", headers=bad).status_code for _ in range(6)] == [401] * 6
    assert list(redis.Redis.from_url(REDIS_URL).scan_iter(f"{prefix}*")), "nothing counted in Redis"

    second = _app(db_url, **config).test_client()  # another worker (or a restart): same counts
    assert [second.get("/api/v1/track/ZZZZZZZZZZZZ").status_code for _ in range(9)] == [404] * 8 + [429]
    assert [second.get("/api/v1/me", headers=bad).status_code for _ in range(5)] == [401] * 4 + [429]
    _refused(second.get("/api/v1/me", headers=bad))

    fresh = _app(db_url).test_client()  # in memory, a new process starts from nothing
    assert fresh.get("/api/v1/track/ZZZZZZZZZZZZ").status_code == 404


# -- a real server, a real client -----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_real_server_with_redis_answers_429_with_retry_after(db_url, demo):
    port, prefix = _free_port(), f"test-server-{uuid.uuid4().hex[:12]}"
    env = dict(os.environ, DATABASE_URL=db_url, REDIS_URL=REDIS_URL, RATELIMIT_KEY_PREFIX=prefix,
               LOG_LEVEL="WARNING")
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "serve", "--no-timers",
                             "--port", str(port)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read()
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        with requests.Session() as http:
            resp = http.post(f"{base}/api/v1/cases", json=intake_body(),
                             headers={"Authorization": f"Bearer {demo['yjp_acceptor']}"}, timeout=30)
            assert resp.status_code == 201, resp.text
            code = resp.json()["tracking_code"]
            assert http.get(f"{base}/api/v1/track/{code}", timeout=10).status_code == 200
            statuses = [http.get(f"{base}/api/v1/track/GUESS{i:07d}", timeout=10).status_code for i in range(25)]
            assert statuses == [404] * 19 + [429] * 6
            refused = http.get(f"{base}/api/v1/track/{code}", timeout=10)
            assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
            assert 1 <= int(refused.headers["Retry-After"]) <= 60
            bad = {"Authorization": "Bearer not-a-token"}
            statuses = [http.get(f"{base}/api/v1/me", headers=bad, timeout=10).status_code for _ in range(12)]
            assert statuses == [401] * 10 + [429] * 2
            assert "Retry-After" not in http.get(f"{base}/healthz", timeout=10).headers
        # Flask-Limiter's key prefix is one segment of the key (LIMITS:LIMITER/<prefix>/...).
        assert list(redis.Redis.from_url(REDIS_URL).scan_iter(f"*/{prefix}/*")), "the server did not count in Redis"
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
        conn = redis.Redis.from_url(REDIS_URL)
        for key in conn.scan_iter(f"*/{prefix}/*"):
            conn.delete(key)
