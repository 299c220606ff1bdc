"""Engine benchmark: N full standard cases through the case services.

    python bench/engine_bench.py [--cases 200] [--db-url URL] [--aging 20]

Runs in-process on a fresh SQLite file (or the PostgreSQL URL given, in a
schema of its own) with the schema built by the migrations, and prints:
cases/s, task completions/s, p50/p99 per-step latency, bytes stored per closed
case (events included), and per-step latency of a case after --aging rework
loops compared with a fresh case.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from bench.databases import bench_database, stored_bytes  # noqa: E402
from bench.figures import pct  # noqa: E402


def make_runtime(db_url: str | None):
    from flask_migrate import upgrade

    from app import create_app, runtime_of
    from engine.services.processes import deploy_paths

    db_url, cleanup = bench_database(db_url, "engine-bench")

    app = create_app({"SQLALCHEMY_DATABASE_URI": db_url, "LOG_LEVEL": "WARNING"})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
    rt = runtime_of(app)
    deploy_paths(rt, None, "bench")
    return rt, db_url, cleanup


def timed(latencies, fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    latencies.append((time.perf_counter() - t) * 1000)
    return out


def run_case(rt, latencies):
    from engine.services import cases
    from tests.support import intake

    case = timed(latencies, cases.start_case, rt, intake(), "bench")
    steps = [
        {"mediation_result": "unresolved"},
        {"decision": "accept", "responsible_section": "执法一科", "responsible_person": "李四"},
        {"result": "已修复", "measures": "约谈"},
        {"decision": "approve"},
        {"rating": "satisfied"},
    ]
    for data in steps:
        case = timed(latencies, cases.complete_task, rt, case["open_tasks"][0]["id"], data, "bench")
    assert case["status"] == "closed", case["status"]
    return case["case_no"]


def aging(rt, loops):
    """Per-step latency of handle/approve/evaluate/review in a fresh case vs after `loops` reworks."""
    from engine.services import cases
    from tests.support import intake

    rt.tables.time_limits["rework"]["max_reworks"] = loops + 10
    case = cases.start_case(rt, intake(), "bench")

    def step(data, lat=None):
        nonlocal case
        t = time.perf_counter()
        case = cases.complete_task(rt, case["open_tasks"][0]["id"], data, "bench")
        if lat is not None:
            lat.append((time.perf_counter() - t) * 1000)

    step({"mediation_result": "unresolved"})
    step({"decision": "accept", "responsible_section": "s", "responsible_person": "p"})
    loop = [{"result": "r", "measures": "m"}, {"decision": "approve"}, {"rating": "dissatisfied"},
            {"instructions": "返工"}]
    fresh, old = [], []
    for i in range(loops + 1):
        target = fresh if i == 0 else (old if i == loops else None)
        for data in loop:
            step(data, target)
    return statistics.median(fresh), statistics.median(old)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--db-url", default=None, help="PostgreSQL URL; default: a fresh SQLite file")
    parser.add_argument("--aging", type=int, default=20, help="rework loops for the aging measurement")
    args = parser.parse_args(argv)

    rt, url, cleanup = make_runtime(args.db_url)
    try:
        for _ in range(5):  # warm-up: caches, connections
            run_case(rt, [])
        from engine.store.models import Case

        with rt.db.read() as s:  # the event log is append-only: measure past the warm-up cases instead
            first_id = (s.scalar(sa.select(sa.func.max(Case.id))) or 0) + 1
        latencies = []
        t0 = time.perf_counter()
        for _ in range(args.cases):
            run_case(rt, latencies)
        elapsed = time.perf_counter() - t0
        completions = args.cases * 5
        per_case, _ = stored_bytes(rt, first_id, args.cases)
        fresh, old = aging(rt, args.aging)
        print(f"database            {rt.db.engine.dialect.name}")
        print(f"cases               {args.cases} in {elapsed:.2f} s")
        print(f"cases/s             {args.cases / elapsed:.1f}")
        print(f"task completions/s  {completions / elapsed:.1f}")
        print(f"step latency p50    {pct(latencies, 50):.2f} ms")
        print(f"step latency p99    {pct(latencies, 99):.2f} ms")
        print(f"bytes per closed case {per_case:.0f} (case row and state, tasks, events, outbox, timers, supervision)")
        print(f"aging: step p50 fresh {fresh:.2f} ms, after {args.aging} rework loops {old:.2f} ms "
              f"({old / fresh:.2f}x)")
    finally:
        if cleanup:
            cleanup()


if __name__ == "__main__":
    main()
