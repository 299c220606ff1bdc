"""List latency at city scale: p50/p99 of every list the API and the console show, on a generated database.

    python bench/generate.py --cases 1000000 --db-url postgresql+psycopg://postgres@127.0.0.1:5432/test \
        --schema gen_city
    python bench/list_bench.py --db-url postgresql+psycopg://postgres@127.0.0.1:5432/test --schema gen_city \
        [--runs 30] [--code DIR]

Calls the services the API calls (engine.services.search.list_cases,
engine.services.tasks.list_tasks, engine.services.supervision.list_supervisions),
each as a user of the scope it stands for: the case list of the busiest
community, of its street, of the busiest department and of the supervision
centre (which sees every case); the centre's overdue cases; a handler's
candidate tasks and the busiest assignee's own tasks; the open supervision
records and all of them. Each list is asked --runs times (first page, 20 rows,
with its total) after one warm-up call; it prints p50, p99 and the total
(`~` when the list says the total is an estimate). The target is p99 < 100 ms
at 1,000,000 cases on PostgreSQL.

`--code DIR` runs the same calls against another checkout's code (e.g. the
main branch, on a schema still at its migration head) for a before figure.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def _pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db-url", required=True)
    parser.add_argument("--schema", required=True, help="the schema bench/generate.py filled")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--code", default=str(Path(__file__).resolve().parents[1]),
                        help="the checkout whose services to call (default: this one)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(args.code).resolve()))
    import sqlalchemy as sa

    from app import create_app, runtime_of
    from engine.rules.access import Caller
    from engine.services import search, supervision, tasks
    from engine.store.models import Case, CaseTask

    url = f"{args.db_url}{'&' if '?' in args.db_url else '?'}options=-csearch_path%3D{args.schema}"
    rt = runtime_of(create_app({"SQLALCHEMY_DATABASE_URI": url, "LOG_LEVEL": "WARNING"}))
    units = rt.tables.org.units if hasattr(rt.tables.org, "units") else None
    with rt.db.read() as s:
        n_cases = s.scalar(sa.select(sa.func.count()).select_from(Case))
        community = s.execute(sa.select(Case.community_code).group_by(Case.community_code)
                              .order_by(sa.func.count().desc()).limit(1)).scalar()
        department = s.execute(sa.select(Case.routed_unit).where(Case.routed_unit.is_not(None))
                               .group_by(Case.routed_unit).order_by(sa.func.count().desc()).limit(1)).scalar()
        assignee = s.execute(sa.select(CaseTask.assignee, CaseTask.unit_code).where(
            CaseTask.state == "ready", CaseTask.assignee.is_not(None)).group_by(CaseTask.assignee, CaseTask.unit_code)
            .order_by(sa.func.count().desc()).limit(1)).first()
        handler_unit = s.execute(sa.select(CaseTask.unit_code).where(CaseTask.state == "ready", CaseTask.role == "handler")
                                 .group_by(CaseTask.unit_code).order_by(sa.func.count().desc()).limit(1)).scalar()
    del units
    street = rt.tables.street_of(community)
    centre = rt.tables.fixed_units.get("supervision_centre")

    def who(unit, kind, *roles, name="bench"):
        return Caller(username=name, display_name=name, unit_code=unit, unit_kind=kind, roles=frozenset(roles))

    lists = [
        (f"cases: community {community}", lambda: search.list_cases(rt, who(community, "community", "acceptor"), {})),
        (f"cases: street {street}", lambda: search.list_cases(rt, who(street, "street", "dispatcher"), {})),
        (f"cases: department {department}", lambda: search.list_cases(rt, who(department, "department", "handler"),
                                                                      {})),
        (f"cases: centre {centre}", lambda: search.list_cases(rt, who(centre, "supervision_centre", "supervisor"), {})),
        ("cases: centre, overdue", lambda: search.list_cases(rt, who(centre, "supervision_centre", "supervisor"),
                                                             {"overdue": True})),
        (f"tasks: candidate (handler of {handler_unit})",
         lambda: tasks.list_tasks(rt, who(handler_unit, "department", "handler"), "candidate")),
        (f"tasks: mine ({assignee[0] if assignee else '-'})",
         lambda: tasks.list_tasks(rt, who(assignee[1] if assignee else department, "department", "handler",
                                          name=assignee[0] if assignee else "nobody"), "mine")),
        ("supervision: open", lambda: supervision.list_supervisions(rt, who(centre, "supervision_centre", "supervisor"),
                                                                    {})),
        ("supervision: all", lambda: supervision.list_supervisions(rt, who(centre, "supervision_centre", "supervisor"),
                                                                   {"status": "all"})),
    ]
    print(f"code {args.code}; schema {args.schema}: {n_cases:,} cases; {args.runs} runs per list, first page of 20")
    worst = 0.0
    for name, call in lists:
        page = call()
        times = []
        for _ in range(args.runs):
            t = time.perf_counter()
            page = call()
            times.append((time.perf_counter() - t) * 1000)
        mark = "~" if page.get("total_estimated") else ""
        worst = max(worst, _pct(times, 99))
        print(f"{name:48s} p50 {_pct(times, 50):8.1f} ms  p99 {_pct(times, 99):8.1f} ms  "
              f"total {mark}{page['total']:,}  rows {len(page['items'])}")
    print(f"worst p99 {worst:.1f} ms ({'within' if worst < 100 else 'over'} the 100 ms target)")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.dont_write_bytecode = True
    main()
