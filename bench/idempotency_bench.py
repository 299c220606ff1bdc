"""Idempotency-Key benchmark: what the key costs an intake and a completion, and what a replay costs.

    python bench/idempotency_bench.py [--cases 200] [--db-url URL]

Over the real app (Flask's test client, one thread) on a fresh SQLite file
or the PostgreSQL URL given (in a schema of its own): N intakes and N
completions of their first task without a key, N of each with a fresh key,
then N replays of the keyed intakes; prints the median and 95th percentile
milliseconds of each.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.databases import bench_database  # noqa: E402


def make_app(db_url: str | None):
    from flask_migrate import upgrade

    from app import create_app, runtime_of
    from engine.services.processes import deploy_paths

    db_url, cleanup = bench_database(db_url, "idem-bench")

    app = create_app({"SQLALCHEMY_DATABASE_URI": db_url, "LOG_LEVEL": "WARNING"})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
    deploy_paths(runtime_of(app), None, "bench")
    return app, cleanup


def timed(latencies: list, call):
    t = time.perf_counter()
    resp = call()
    latencies.append((time.perf_counter() - t) * 1000)
    assert resp.status_code in (200, 201), resp.get_json()
    return resp


def figures(name: str, ms: list) -> str:
    p95 = statistics.quantiles(ms, n=20)[-1]
    return f"{name:28} median {statistics.median(ms):6.1f} ms   p95 {p95:6.1f} ms"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--db-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args(argv)

    from app import runtime_of
    from engine.services.seed import seed_demo
    from tests.api_support import intake_body

    app, cleanup = make_app(args.db_url)
    try:
        token = {u["username"]: u["token"] for u in seed_demo(runtime_of(app))["users"]}["yjp_acceptor"]
        client, auth = app.test_client(), {"Authorization": f"Bearer {token}"}
        print(f"database: {runtime_of(app).db.engine.dialect.name}, {args.cases} of each")
        keys, ms = [], {(what, keyed): [] for what in ("intake", "completion") for keyed in (False, True)}
        for i in range(2 * args.cases):  # interleaved, so that a growing database weighs on both alike
            keyed, key = bool(i % 2), str(uuid.uuid4())
            headers = {**auth, "Idempotency-Key": key} if keyed else auth
            case = timed(ms["intake", keyed], lambda: client.post("/api/v1/cases", json=intake_body(),
                                                                  headers=headers))
            task = case.get_json()["open_tasks"][0]["id"]
            headers = {**auth, "Idempotency-Key": key + "-c"} if keyed else auth
            timed(ms["completion", keyed], lambda: client.post(f"/api/v1/tasks/{task}/complete", headers=headers,
                                                               json={"data": {"mediation_result": "unresolved"}}))
            if keyed:
                keys.append(key)
        for (what, keyed), latencies in sorted(ms.items(), key=lambda kv: (kv[0][0] != "intake", kv[0][1])):
            print(figures(f"{what} {'with' if keyed else 'without'} a key", latencies))
        replays = []
        for key in keys:
            resp = timed(replays, lambda: client.post("/api/v1/cases", json=intake_body(),
                                                      headers={**auth, "Idempotency-Key": key}))
            assert resp.headers["Idempotent-Replayed"] == "true"
        print(figures("replay of an intake", replays))
    finally:
        if cleanup:
            cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
