"""Garbage-collector pauses in a serving process, with and without the startup heap frozen.

    python bench/gc_bench.py [--cases 300] [--rounds 2]

`flask serve` and `flask timers run` freeze their startup heap
(cli.production.freeze_startup_heap: the modules, the app, the definitions and
the organisation, moved to the collector's permanent generation) before they
fork or serve. This bench shows what that buys: in child processes, alternately
frozen and not, it builds the app on a fresh SQLite file, deploys the
procedures, seeds the demo users and drives `--cases` full standard cases
through the app's WSGI interface (an intake and five completions each, as the
demo users; Flask's test client, no network), then prints per mode: the
objects frozen, the full (generation 2) collections that ran and their pauses,
the latency of a whole case (p50/p99/max) and the mean time per request. A
full collection holds the GIL: every thread of a worker waits through it.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.databases import bench_database  # noqa: E402
from bench.figures import pct  # noqa: E402
from bench.http_bench import PROCEDURE  # noqa: E402


def measure(cases: int, frozen: bool) -> dict:
    """In this process: the app, `cases` full cases through it, and the collector's full passes."""
    url, _ = bench_database(None, "gc-bench")
    env = dict(os.environ, DATABASE_URL=url)
    subprocess.run([sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    from app import create_app, runtime_of
    from cli.production import freeze_startup_heap
    from engine.services.processes import deploy_paths
    from engine.services.seed import seed_demo
    from tests.api_support import STEPS, intake_body

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "LOG_LEVEL": "WARNING"})
    rt = runtime_of(app)
    deploy_paths(rt, None, "gc-bench")
    tokens = {u["username"]: u["token"] for u in seed_demo(rt)["users"]}
    client = app.test_client()

    def call(path, user, body):
        resp = client.post(path, headers={"Authorization": f"Bearer {tokens[user]}"}, json=body)
        assert resp.status_code in (200, 201), resp.get_json()
        return resp.get_json()

    def one_case():
        case = call("/api/v1/cases", "yjp_acceptor", intake_body())
        for element in PROCEDURE:
            user, data = STEPS[element]
            case = call(f"/api/v1/tasks/{case['open_tasks'][0]['id']}/complete", user, {"data": data})

    one_case()  # the first case loads what every later one uses
    startup_objects = len(gc.get_objects())
    frozen_objects = freeze_startup_heap() if frozen else 0
    pauses, started = [], [0.0]

    def on_gc(phase, info):
        if info["generation"] == 2:
            if phase == "start":
                started[0] = time.perf_counter()
            else:
                pauses.append(time.perf_counter() - started[0])

    gc.callbacks.append(on_gc)
    latencies = []
    began = time.perf_counter()
    for _ in range(cases):
        t = time.perf_counter()
        one_case()
        latencies.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - began
    gc.callbacks.remove(on_gc)
    return {"frozen": frozen, "startup_objects": startup_objects, "frozen_objects": frozen_objects,
            "full_collections": len(pauses), "pause_p50_ms": pct(pauses, 50) * 1000,
            "pause_max_ms": max(pauses, default=float("nan")) * 1000,
            "case_p50_ms": pct(latencies, 50) * 1000, "case_p99_ms": pct(latencies, 99) * 1000,
            "case_max_ms": max(latencies) * 1000, "request_ms": elapsed * 1000 / (cases * (1 + len(PROCEDURE)))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2, help="child processes per mode, alternating")
    parser.add_argument("--child", choices=("frozen", "unfrozen"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.cases, args.child == "frozen")))
        return
    print(f"{args.cases} full cases per run (an intake and {len(PROCEDURE)} completions), SQLite, in-process WSGI")
    for _ in range(args.rounds):
        for mode in ("unfrozen", "frozen"):
            out = subprocess.run([sys.executable, __file__, "--cases", str(args.cases), "--child", mode], cwd=ROOT,
                                 capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(f"the {mode} run failed:\n{out.stderr[-3000:]}")
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{mode:8}  startup heap {r['startup_objects']:7} objects, frozen {r['frozen_objects']:7}  "
                  f"full collections {r['full_collections']:2}: pause p50 {r['pause_p50_ms']:6.1f} ms max "
                  f"{r['pause_max_ms']:6.1f} ms  case p50 {r['case_p50_ms']:6.1f} ms p99 {r['case_p99_ms']:6.1f} ms "
                  f"max {r['case_max_ms']:6.1f} ms  {r['request_ms']:.2f} ms/request", flush=True)


if __name__ == "__main__":
    main()
