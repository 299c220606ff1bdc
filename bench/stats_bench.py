"""Statistics benchmark: a month's figures by unit, and the monthly assessment, on a generated database.

    python bench/generate.py --cases 100000                      # prints the database URL
    python bench/stats_bench.py --db-url URL [--month 2024-06] [--repeat 5]

Prints the number of cases in the database and in the month, and the median and
worst time of `compute_statistics(group_by=unit)` and of `monthly_assessment` over
--repeat runs (the first run, with cold caches, is reported apart), with the median's
ratio to the issue's budget: on PostgreSQL (1,000,000 cases) 1 s for the statistics and
5 s for the assessment, on SQLite (100,000 cases) 2 s for each.
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


BUDGETS_S = {"postgresql": (1.0, 5.0), "sqlite": (2.0, 2.0)}  # (statistics by unit, monthly assessment)


def timed(fn, *args, **kwargs):
    """(wall seconds, this process's CPU seconds): on a shared machine the CPU time shows the work itself."""
    started, cpu = time.perf_counter(), time.process_time()
    fn(*args, **kwargs)
    return time.perf_counter() - started, time.process_time() - cpu


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
    dialect = rt.db.engine.dialect.name
    print(f"{dialect}: {total:,} cases, {in_month:,} accepted in {args.month}")
    budgets = BUDGETS_S.get(dialect, BUDGETS_S["sqlite"])
    for (name, fn, fargs), budget in zip((
            ("statistics by unit", statistics.compute_statistics, (rt, None, p, "unit")),
            ("monthly assessment", assessment.monthly_assessment, (rt, args.month))), budgets):
        cold, _ = timed(fn, *fargs)
        runs = [timed(fn, *fargs) for _ in range(args.repeat)]
        median = stats_mod.median(w for w, _ in runs)
        print(f"{name:20} cold {cold * 1000:7.0f} ms   median {median * 1000:7.0f} ms   "
              f"worst {max(w for w, _ in runs) * 1000:7.0f} ms   median/budget {median / budget:5.2f} "
              f"(budget {budget:g} s)   cpu here {stats_mod.median(c for _, c in runs) * 1000:7.0f} ms")


if __name__ == "__main__":
    main()
