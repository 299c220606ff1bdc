"""`flask outbox run` as a real process, killed with SIGKILL mid-batch and restarted: no message is lost
and none goes out under two keys (the gateway may see one key twice: that is the point of the key)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine import clock as clock_mod
from engine.services.notifications import set_contact
from engine.store.models import Outbox
from tests.gateways import Gateway, channel_config

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
N = 30


def start_dispatcher(db_url: str, gateway: Gateway, name: str) -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL=db_url, LOG_LEVEL="WARNING", OUTBOX_LEASE_SECONDS="2", OUTBOX_BATCH="10",
               OUTBOX_POLL_SECONDS="0.2", OUTBOX_QUIET_HOURS="off", **channel_config(gateway, OUTBOX_HTTP_TIMEOUT="5"))
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "outbox", "run", "--worker", name],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until(predicate, timeout: float, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the dispatcher exited: {proc.communicate()[1][-2000:]}")
        time.sleep(0.05)
    raise AssertionError("timed out")


def counts(rt) -> dict:
    with rt.db.read() as s:
        return dict(s.execute(select(Outbox.status, func.count()).group_by(Outbox.status)).all())


def test_kill_9_mid_batch_then_restart_loses_nothing_and_never_changes_a_key(rt, demo, db_url):
    set_contact(rt, "unit", "YC-CGJ", phone="13900001111")
    with rt.db.write() as s:
        for i in range(N):
            params = {"case_no": f"2025-{i:06d}", "category": "城市管理", "unit": "宜昌市城市管理执法局"}
            s.add(Outbox(channel="auto", recipient_kind="unit", recipient="YC-CGJ", message=params["case_no"],
                         kind="arrival", params=params, status="pending", created_at=clock_mod.now()))
    with Gateway(default="slow", slow_seconds=0.25) as gateway:
        first = start_dispatcher(db_url, gateway, "first")
        try:
            wait_until(lambda: len(gateway.sms()) >= 4, 60, first)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        left = counts(rt)
        assert left.get("sending", 0) > 0 and left.get("sent", 0) < N, left  # killed in the middle of a batch
        second = start_dispatcher(db_url, gateway, "second")
        try:
            wait_until(lambda: counts(rt) == {"sent": N}, 90, second)
        finally:
            second.send_signal(signal.SIGTERM)
            out, err = second.communicate(timeout=30)
        assert second.returncode == 0, err
        keys_by_message = defaultdict(set)
        for request in gateway.sms():
            keys_by_message[json.loads(request["form"]["TemplateParam"])["case_no"]].add(request["form"]["OutId"])
    with rt.db.read() as s:
        stored = dict(s.execute(select(Outbox.message, Outbox.idempotency_key)).all())
    assert len(stored) == N and set(keys_by_message) == set(stored)  # every message reached the gateway
    assert all(keys == {stored[case_no]} for case_no, keys in keys_by_message.items())  # one key per message
    assert "stopped" in err  # the second worker tore down cleanly on SIGTERM
