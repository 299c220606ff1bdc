"""Intake benchmark: cases from integrated systems and Open311, through the whole Flask stack.

    python bench/intake_bench.py [--cases 200] [--db-url URL]

In-process (Flask test client) on a fresh SQLite file, or the PostgreSQL URL
given (in a schema of its own), with the schema built by the migrations.
Prints: new intake submissions/s (placed by coordinates), retried submissions/s
(the idempotent answer), Open311 POSTs/s, and the p50/p99 of an Open311
`requests.json` and `requests.xml` listing of everything submitted.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from bench.databases import bench_database  # noqa: E402


def make_app(db_url: str | None):
    from flask_migrate import upgrade

    from app import create_app, runtime_of
    from engine.services.processes import deploy_paths
    from engine.services.seed import seed_demo

    db_url, cleanup = bench_database(db_url, "intake-bench")

    limits = {"OPEN311_RATE_LIMIT": "1000000 per minute", "INTAKE_RATE_LIMIT": "1000000 per minute"}
    app = create_app({"SQLALCHEMY_DATABASE_URI": db_url, "LOG_LEVEL": "WARNING", **limits})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
    rt = runtime_of(app)
    deploy_paths(rt, None, "bench")
    seed_demo(rt)
    return app, rt, cleanup


def _rate(n: int, fn) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--db-url", default=None)
    args = parser.parse_args(argv)
    app, rt, cleanup = make_app(args.db_url)
    from engine.services.clients import create_client

    try:
        system = {"X-Api-Key": create_client(rt, "bench-12345", "intake", "hotline_12345")["api_key"]}
        key = create_client(rt, "bench-app", "open311", "web")["api_key"]
        client = app.test_client()

        def body(i):
            return {"external_ref": f"B-{i}", "title": "噪音扰民", "description": "夜间施工噪音", "category": "environment",
                    "reporter": {"name": "李四", "phone": "13900001111"},
                    "location": {"address": "大学路1号", "lat": 30.71, "lon": 111.305}}

        def submit(i, expect):
            resp = client.post("/api/v1/intake", json=body(i), headers=system)
            assert resp.status_code == expect, resp.get_json()

        def post(i):
            resp = client.post("/open311/v2/requests.json", data={
                "api_key": key, "service_code": "urban_management", "lat": "30.697", "long": "111.282",
                "description": f"路灯损坏 {i}", "phone": "13812345678"})
            assert resp.status_code == 201, resp.get_json()

        new = _rate(args.cases, lambda i: submit(i, 201))
        retried = _rate(args.cases, lambda i: submit(i, 200))
        posted = _rate(args.cases, post)
        print(f"intake, new cases:        {new:8.1f} submissions/s ({args.cases})")
        print(f"intake, retried (200):    {retried:8.1f} submissions/s")
        print(f"open311 POST requests:    {posted:8.1f} requests/s")
        for fmt in ("json", "xml"):
            times = []
            for _ in range(20):
                start = time.perf_counter()
                resp = client.get(f"/open311/v2/requests.{fmt}")
                times.append(time.perf_counter() - start)
                assert resp.status_code == 200
            times.sort()
            print(f"open311 GET requests.{fmt}: p50 {statistics.median(times) * 1000:7.1f} ms, "
                  f"p99 {times[-1] * 1000:7.1f} ms ({args.cases} requests listed)")
    finally:
        if cleanup:
            cleanup()


if __name__ == "__main__":
    main()
