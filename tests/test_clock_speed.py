"""A clock you can speed up (demo and training instances): the clock itself, the timer service on it,
the instance mark that keeps production off it, and the instance time on every response."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from engine import clock as clock_mod
from engine.services import cases
from engine.services.instance import instance_purpose, mark_instance, practice_clock
from engine.store.models import Case, CaseEvent
from engine.store.settings_models import InstanceSetting
from engine.store.timer_models import CaseTimer
from tests.conftest import T0
from tests.support import intake
from timers import TimerService


class RealSeconds:
    """A stand-in for time.monotonic that the test moves (the clock's arithmetic, without waiting)."""

    def __init__(self):
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


def test_a_scaled_clock_runs_n_times_faster_from_its_start():
    real = RealSeconds()
    fast = clock_mod.ScaledClock(3600, start=T0, real=real)
    assert fast.now() == T0
    real.value += 2.5
    assert fast.now() == T0 + timedelta(hours=2.5)
    assert fast.real_seconds(7200) == 2.0 and fast.span(timedelta(seconds=3)) == timedelta(hours=3)
    fast.set_speed(60)  # from the current instant on, no jump
    assert fast.now() == T0 + timedelta(hours=2.5)
    real.value += 1
    assert fast.now() == T0 + timedelta(hours=2.5, minutes=1)
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            clock_mod.ScaledClock(bad)
    with pytest.raises(ValueError):
        clock_mod.ScaledClock(2, start=datetime(2025, 1, 1))
    # the real clock and a manual one run at speed 1
    assert clock_mod.Clock().real_seconds(5) == 5 and clock_mod.ManualClock(T0).span(timedelta(1)) == timedelta(1)


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


@pytest.mark.slow
def test_timers_fire_at_their_instants_on_a_sped_up_clock(rt):
    # Five hours a second: the warning and the deadline (a day apart) are 4.8 real seconds apart, so a
    # worker held up for a few seconds on a loaded machine still fires them one by one, at their instants.
    speed = 18000
    with clock_mod.using_clock(clock_mod.ScaledClock(speed, start=T0)):
        case = cases.start_case(rt, intake(), "yjp_acceptor")
        case = cases.complete_task(rt, case["open_tasks"][0]["id"], {"mediation_result": "unresolved"},
                                   "yjp_acceptor")
        due = datetime.fromisoformat(case["open_tasks"][0]["due_at"])
        real_wait = (due - clock_mod.now()).total_seconds() / speed
        service = TimerService(rt, "fast").start()
        try:
            def fired():
                with rt.db.read() as session:
                    rows = session.scalars(select(CaseEvent).join(Case, Case.id == CaseEvent.case_id).where(
                        Case.case_no == case["case_no"], CaseEvent.type == "timer_fired")).all()
                    return [r.payload for r in rows] if len(rows) >= 2 else None

            try:
                payloads = wait_for(fired, timeout=real_wait + 60, what="the warning and deadline timers to fire")
            except AssertionError as exc:
                with rt.db.read() as session:
                    timers = [(t.id, t.due_at, t.claimed_by, t.lease_until, t.retry_at, t.incident_id)
                              for t in session.scalars(select(CaseTimer))]
                raise AssertionError(f"{exc}; now {clock_mod.now()}, outcomes {service.outcomes}, "
                                     f"timers {timers}, jobs {service.scheduler.get_jobs()}") from None
        finally:
            service.stop()
    assert [p["kind"] for p in payloads] == ["warn", "due"]
    for p in payloads:
        late = datetime.fromisoformat(p["fired_at"]) - datetime.fromisoformat(p["due_at"])
        # never early; late by no more than a few real seconds' worth of the fast clock
        assert timedelta(0) <= late < timedelta(seconds=5 * speed), p
    assert datetime.fromisoformat(payloads[1]["due_at"]) == due


def test_speed_is_refused_on_an_instance_not_created_for_demo_or_training(app, rt):
    result = app.test_cli_runner().invoke(args=["serve", "--speed", "10"])
    assert result.exit_code == 2, result.output
    assert "--speed is only for an instance created for demo or training; this one is production" in result.output
    assert instance_purpose(rt) == "production"
    with rt.db.read() as session:
        assert session.scalars(select(InstanceSetting)).all() == []
    result = app.test_cli_runner().invoke(args=["serve", "--speed", "10", "--no-timers"])
    assert result.exit_code == 2 and "--speed needs the embedded timer service" in result.output
    result = app.test_cli_runner().invoke(args=["serve", "--speed", "0"])
    assert result.exit_code == 2 and "--speed" in result.output  # click refuses a speed that is not positive


def test_an_instance_holding_cases_is_not_turned_into_a_training_one(app, rt):
    cases.start_case(rt, intake(), "yjp_acceptor")
    result = app.test_cli_runner().invoke(args=["training", "init"])
    assert result.exit_code == 1 and "holds 1 case(s) and was not created for demo or training" in result.output
    assert instance_purpose(rt) == "production"
    result = app.test_cli_runner().invoke(args=["demo", "--prepare-only", "--speed", "100"])
    assert result.exit_code == 2 and "--speed refused" in result.output
    assert instance_purpose(rt) == "production"


def test_a_training_instance_runs_fast_and_resumes_where_its_data_is(app, rt, clock):
    result = app.test_cli_runner().invoke(args=["training", "init"])
    assert result.exit_code == 0 and "marked for training" in result.output, result.output
    assert instance_purpose(rt) == "training"
    assert mark_instance(rt, "training", "again") == {"purpose": "training", "marked": False}
    # a fast run earlier took the cases a month ahead of the real clock: a restart never goes back
    ahead = datetime.now(timezone.utc) + timedelta(days=30)
    clock.set(ahead)
    cases.start_case(rt, intake(), "yjp_acceptor")
    fast = practice_clock(rt, 600)
    assert fast.speed == 600 and ahead <= fast.now() < ahead + timedelta(hours=1)


def test_every_response_carries_the_instance_time(app, client, demo):
    resp = client.get("/healthz")
    at = datetime.fromisoformat(resp.headers["X-Clock"])
    assert at == T0 and at.utcoffset() == timedelta(hours=8)  # in the application's time zone
    assert "X-Clock-Speed" not in resp.headers
    assert resp.get_json()["clock"] == resp.headers["X-Clock"] and resp.get_json()["clock_speed"] == 1
    assert datetime.fromisoformat(client.get("/api/v1/me").headers["X-Clock"]) == T0  # a 401 too
    with clock_mod.using_clock(clock_mod.ScaledClock(120, start=T0)):
        resp = client.get("/api/v1/cases/2025-999999", headers={"Authorization": f"Bearer {demo['auditor']}"})
        assert resp.status_code == 404
        assert resp.headers["X-Clock-Speed"] == "120"
        assert datetime.fromisoformat(resp.headers["X-Clock"]) >= T0
