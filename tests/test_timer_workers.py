"""Timer workers as real processes: killed mid-firing and restarted, and two at once on PostgreSQL."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.services import cases
from engine.store.models import CaseEvent
from engine.store.timer_models import CaseTimer
from tests.support import Driver

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def start_worker(db_url: str, name: str) -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL=db_url, TIMER_LEASE_SECONDS="3", LOG_LEVEL="WARNING")
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "timers", "run", "--worker", name],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def cases_at_sign_for(rt, n: int) -> None:
    """n cases waiting for sign-for: each has two timers (warn, due), long due by the real clock."""
    for _ in range(n):
        d = Driver.start(rt)
        cases.complete_task(rt, d.open["id"], {"mediation_result": "unresolved"}, "acceptor")


def firings(rt) -> Counter:
    with rt.db.read() as s:
        return Counter(s.scalars(select(CaseEvent.task_id).where(CaseEvent.type == "timer_fired")).all())


def timers_left(rt) -> int:
    with rt.db.read() as s:
        return s.scalar(select(func.count()).select_from(CaseTimer))


def wait_until(predicate, timeout: float, procs=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        for p in procs:
            if p.poll() is not None:
                raise AssertionError(f"worker exited early: {p.stderr.read()}")
        time.sleep(0.1)
    return False


def stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


def test_a_worker_killed_while_firing_loses_nothing_and_doubles_nothing(rt, db_url):
    cases_at_sign_for(rt, 60)
    assert timers_left(rt) == 120
    first = start_worker(db_url, "first")
    try:
        assert wait_until(lambda: sum(firings(rt).values()) >= 15, 60, [first]), "nothing fired"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    fired_before = sum(firings(rt).values())
    assert fired_before < 120, "the worker finished before it could be killed"
    second = start_worker(db_url, "second")
    try:
        assert wait_until(lambda: timers_left(rt) == 0, 90, [second]), f"{timers_left(rt)} timers left"
    finally:
        stop(second)
    counts = firings(rt)
    assert sum(counts.values()) == 120 and set(counts.values()) == {1}


def test_two_workers_fire_2000_timers_exactly_once(rt, db_url):
    if db_url.startswith("sqlite"):
        pytest.skip("several timer workers at once need PostgreSQL; on SQLite one process at a time is enough")
    cases_at_sign_for(rt, 1000)
    assert timers_left(rt) == 2000
    workers = [start_worker(db_url, "w1"), start_worker(db_url, "w2")]
    try:
        assert wait_until(lambda: timers_left(rt) == 0, 240, workers), f"{timers_left(rt)} timers left"
    finally:
        outputs = [stop(w) for w in workers]
    counts = firings(rt)
    assert sum(counts.values()) == 2000 and set(counts.values()) == {1}
    assert all("stopped" in out for out in outputs), outputs
