"""Console rendering benchmark: a task list over 1,000 open tasks and a case page of 200 events.

    python bench/console_bench.py [--tasks 1000] [--events 200] [--runs 200] [--db-url URL]

Builds the data through the real services on a fresh database
(bench/databases.py: a new SQLite file unless --db-url names PostgreSQL):
`--tasks` cases registered in one community, each with its open mediation
step (so its acceptor's candidate list holds them all), and one case whose
open step is claimed and released until its log has `--events` events. Then
renders, server-side and signed in as that acceptor (session cookie, the
Flask test client: no network in the figure), the candidate task list (the
console's page of 50, and the largest page of 100, both counting all open
tasks) and the case page (summary, timeline, comments, notifications and
the BPMN diagram as SVG), `--runs` times each, and prints p50 / p99 / max in
milliseconds against the 100 ms target.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_MS = 100.0
PASSWORD = "bench password"


def _percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return statistics.median(ordered), p99, ordered[-1]


def _measure(client, path: str, runs: int) -> tuple[list[float], list[float]]:
    """(wall-clock ms, CPU ms of this process) per request: on a shared machine the wall clock also
    counts the time other processes held the cores; the CPU time is the render's own cost."""
    answer = client.get(path)
    assert answer.status_code == 200, (path, answer.status_code)
    wall, cpu = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        answer = client.get(path)
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
        assert answer.status_code == 200
    return wall, cpu


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--db-url", default=None, help="PostgreSQL URL (default: a new SQLite file)")
    args = parser.parse_args(argv)

    from flask_migrate import upgrade

    from app import create_app, runtime_of
    from bench.databases import bench_database
    from engine.rules.access import Caller
    from engine.services import cases, tasks
    from engine.services.processes import deploy_paths
    from engine.services.seed import seed_demo
    from engine.services.signin import set_password
    from tests.support import intake

    url, cleanup = bench_database(args.db_url, "console")
    try:
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "LOG_LEVEL": "WARNING", "RATELIMIT_ENABLED": False})
        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"))
        rt = runtime_of(app)
        deploy_paths(rt, None, "bench")
        seed_demo(rt)
        set_password(rt, "yjp_acceptor", PASSWORD)
        t = time.perf_counter()
        for i in range(args.tasks):
            cases.start_case(rt, intake(title=f"纠纷 {i}"), "bench")
        long_case = cases.start_case(rt, intake(title="事件很多的案件"), "bench")
        task_id = long_case["open_tasks"][0]["id"]
        me = Caller("yjp_acceptor", "王芳", "XL-XLJD-YJP", "community", frozenset({"acceptor"}))
        while len(cases.case_events(rt, long_case["case_no"])) < args.events:
            tasks.claim_task(rt, task_id, me)
            tasks.unclaim_task(rt, task_id, me)
        events = len(cases.case_events(rt, long_case["case_no"]))
        print(f"data: {args.tasks + 1} open tasks, a case of {events} events on "
              f"{rt.db.engine.dialect.name} ({time.perf_counter() - t:.1f}s to build)")

        client = app.test_client()
        page = client.get("/console/signin").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        signed = client.post("/console/signin", data={"username": "yjp_acceptor", "password": PASSWORD,
                                                      "csrf_token": token})
        assert signed.status_code == 302, signed.status_code
        listing = client.get("/console/tasks?scope=candidate").get_data(as_text=True)
        assert f"({args.tasks + 1})" in listing, "the list does not count every open task"
        worst = 0.0
        for label, path in (("task list, page of 50", "/console/tasks?scope=candidate"),
                            ("task list, page of 100", "/console/tasks?scope=candidate&per_page=100"),
                            (f"case page, {events} events + diagram", f"/console/cases/{long_case['case_no']}")):
            wall, cpu = _measure(client, path, args.runs)
            p50, p99, top = _percentiles(wall)
            c50, c99, _ = _percentiles(cpu)
            worst = max(worst, p99)
            print(f"{label:34} p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  max {top:6.1f} ms  "
                  f"(p99 / target {p99 / TARGET_MS:.2f}); CPU p50 {c50:5.1f} ms  p99 {c99:5.1f} ms")
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"worst p99 {worst:.1f} ms: {'within' if worst < TARGET_MS else 'OVER'} the {TARGET_MS:.0f} ms target "
              f"(load average {load} on {os.cpu_count()} cores)")
        return 0 if worst < TARGET_MS else 1
    finally:
        if cleanup:
            cleanup()


if __name__ == "__main__":
    raise SystemExit(main())
