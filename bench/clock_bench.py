"""Timers on a sped-up clock: how late, in real time, the timer service fires them at speed N.

    python bench/clock_bench.py [--speed 3600] [--cases 50] [--db-url URL]

Makes `--cases` real cases waiting for sign-for (two timers each: warning and
deadline, the same two instants for every case, so each comes due as a burst)
at a Monday 09:00, then starts the embedded timer service on an
`engine.clock.ScaledClock` at `--speed` from that instant and waits until
every timer has fired. Prints how
long that took in real seconds and, from the `timer_fired` events, the lag
(fired − due) on the instance's clock and in real milliseconds (p50, p99,
max), and how many fired early (must be 0).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.engine_bench import make_runtime  # noqa: E402
from bench.timers_bench import _pct  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=float, default=3600)
    parser.add_argument("--cases", type=int, default=50)
    parser.add_argument("--db-url", default=None)
    parser.add_argument("--timeout", type=float, default=300, help="real seconds to wait for the timers")
    args = parser.parse_args()

    from sqlalchemy import func, select

    from engine import clock
    from engine.services import cases
    from engine.store.models import CaseEvent
    from engine.store.timer_models import CaseTimer
    from tests.support import intake
    from timers import TimerService

    rt, _url, cleanup = make_runtime(args.db_url)
    # A Monday 09:00 in Shanghai: the sign-for deadline is a working day and a half away.
    start = datetime(2025, 3, 3, 1, 0, tzinfo=timezone.utc)
    try:
        with clock.using_clock(clock.ManualClock(start)):
            for _ in range(args.cases):
                case = cases.start_case(rt, intake(), "yjp_acceptor")
                cases.complete_task(rt, case["open_tasks"][0]["id"], {"mediation_result": "unresolved"},
                                    "yjp_acceptor")
        with rt.db.read() as session:
            want = session.scalar(select(func.count()).select_from(CaseTimer))
        with clock.using_clock(clock.ScaledClock(args.speed, start=start)):
            service = TimerService(rt, "clock-bench").start()
            started = time.monotonic()
            try:
                while time.monotonic() - started < args.timeout:
                    with rt.db.read() as session:
                        if not session.scalar(select(func.count()).select_from(CaseTimer)):
                            break
                    time.sleep(0.2)
            finally:
                service.stop()
            took = time.monotonic() - started
        with rt.db.read() as session:
            payloads = session.scalars(select(CaseEvent.payload).where(CaseEvent.type == "timer_fired")).all()
        lags = [(datetime.fromisoformat(p["fired_at"]) - datetime.fromisoformat(p["due_at"])).total_seconds()
                for p in payloads]
        real_ms = [lag / args.speed * 1000 for lag in lags]
        print(f"speed {args.speed:g}x, {args.cases} cases, {len(payloads)}/{want} timers fired "
              f"in {took:.1f} real s ({rt.db.engine.dialect.name})")
        if lags:
            print(f"lag on the instance's clock: p50 {statistics.median(lags):.0f} s, p99 {_pct(lags, 99):.0f} s, "
                  f"max {max(lags):.0f} s")
            print(f"lag in real time: p50 {statistics.median(real_ms):.0f} ms, p99 {_pct(real_ms, 99):.0f} ms, "
                  f"max {max(real_ms):.0f} ms")
        print(f"fired early: {sum(lag < 0 for lag in lags)}; firing outcomes: {service.outcomes}")
    finally:
        if cleanup:
            cleanup()


if __name__ == "__main__":
    main()
