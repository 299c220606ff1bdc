"""Audit benchmark: how fast `flask audit verify --all` checks standard cases.

    python bench/audit_bench.py [--cases 1000] [--db-url URL]

Creates N standard cases driven through the happy path by the case services
(on a fresh SQLite file, or the PostgreSQL URL given, in a schema of its own),
then times `engine.services.audit.verify_cases(rt)` — the service function behind
`flask audit verify --all`: hash chain, stored-state digest and a strict
replay of every case — and prints cases verified per second (one process,
one core) and the time per 1,000 cases.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.engine_bench import make_runtime  # noqa: E402


def drive(rt, n: int) -> None:
    from tests.support import Driver

    for _ in range(n):
        Driver.start(rt, actor="bench").happy_path()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--db-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args(argv)

    from engine.services.audit import verify_cases

    rt, url, cleanup = make_runtime(args.db_url)
    try:
        t = time.perf_counter()
        drive(rt, args.cases)
        made = time.perf_counter() - t
        t = time.perf_counter()
        result = verify_cases(rt)
        took = time.perf_counter() - t
        print(f"database: {rt.db.engine.dialect.name}")
        print(f"created {args.cases} standard cases (happy path) in {made:.1f}s")
        print(f"verify --all: {result['checked']} cases in {took:.2f}s = {result['checked'] / took:.0f} cases/s; "
              f"{took / result['checked'] * 1000:.2f}s per 1,000 cases; failed: {result['failed']}")
        return 1 if result["failed"] else 0
    finally:
        if cleanup:
            cleanup()


if __name__ == "__main__":
    sys.exit(main())
