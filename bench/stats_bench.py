"""Statistics benchmark: a month's figures by unit, and the monthly assessment, on a generated database.

    python bench/generate.py --cases 100000                      # prints the database URL
    python bench/stats_bench.py --db-url URL [--month 2024-06] [--repeat 5]

Prints the number of cases in the database and in the month, and the median and
worst time of `compute_statistics(group_by=unit)` and of `monthly_assessment` over
--repeat runs (the first run, with cold caches, is reported apart).
"""
from __future__ import annotations

import argparse
import statistics as stats_mod
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402


def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - started, out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db-url", required=True)
    parser.add_argument("--month", default="2024-06")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    from app import create_app, runtime_of
    from engine.services import assessment, statistics
    from engine.store.models import Case

    app = create_app({"SQLALCHEMY_DATABASE_URI": args.db_url, "LOG_LEVEL": "WARNING"})
    rt = runtime_of(app)
    assessment.deploy_rules(rt, "bench")
    p = statistics.month_period(rt, args.month)
    with rt.db.read() as session:
        total = session.scalar(sa.select(sa.func.count()).select_from(Case))
        in_month = session.scalar(sa.select(sa.func.count()).select_from(Case)
                                  .where(Case.created_at >= p.start, Case.created_at < p.end))
    print(f"{rt.db.engine.dialect.name}: {total:,} cases, {in_month:,} accepted in {args.month}")
    for name, fn, fargs in (("statistics by unit", statistics.compute_statistics, (rt, None, p, "unit")),
                            ("monthly assessment", assessment.monthly_assessment, (rt, args.month))):
        cold, _ = timed(fn, *fargs)
        runs = [timed(fn, *fargs)[0] for _ in range(args.repeat)]
        print(f"{name:20} cold {cold * 1000:7.0f} ms   median {stats_mod.median(runs) * 1000:7.0f} ms   "
              f"worst {max(runs) * 1000:7.0f} ms")


if __name__ == "__main__":
    main()
