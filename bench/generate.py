"""Bulk generator: a database of N realistic cases, written through the real tables, in minutes.

    python bench/generate.py --cases 1000000 --db-url postgresql+psycopg://postgres@127.0.0.1:5432/test \
        [--schema NAME] [--from 2022-01-01 --years 5] [--templates 400] [--seed 1]

First it runs `--templates` disputes through the real engine, handlers and timer service
with `flask simulate`'s engine (a month on the virtual clock, the default profile), so the
templates are real cases on every path: resolved by the community, handled by a
department, returned, rated dissatisfied and reworked, late and escalated, still open.
Then it clones them, row for row — case, workflow state, units of the case, statistics timeline, task
projection, events, timers, supervision records — each clone shifted to a random
instant of the span (`--years` from `--from`), until N cases exist, written in the order of
those instants as a city's cases arrive (ids and the rows' places on disk follow time).
Cloned events keep their template's hashes, so `flask audit verify` is not meant for
generated cases: they exist to measure lists, statistics and assessments at city scale
(bench/stats_bench.py, bench/list_bench.py). On PostgreSQL the clones are written with COPY.
At the end the database is vacuumed and analyzed, as after any bulk load. It prints the
time taken and rows written; `--schema` (PostgreSQL) keeps the data in a schema of that
name for later benches (default: a new `gen_...` schema, printed).
"""
from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

BATCH = 2000


def make_runtime(db_url: str, schema: str | None):
    from flask_migrate import upgrade

    from app import create_app, runtime_of
    from engine.services.processes import deploy_paths

    if db_url.startswith("postgresql"):
        schema = schema or f"gen_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(db_url)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        admin.dispose()
        db_url = f"{db_url}{'&' if '?' in db_url else '?'}options=-csearch_path%3D{schema}"
    app = create_app({"SQLALCHEMY_DATABASE_URI": db_url, "LOG_LEVEL": "WARNING"})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
    rt = runtime_of(app)
    deploy_paths(rt, None, "generator")
    return rt, db_url


def templates(rt, n: int, seed: int, first: date):
    from engine.services.simulation import simulate
    from timers import TimerService

    last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    simulate(rt, first, last, seed, TimerService(rt, "generator").run_until_idle, cases_total=n)
    from engine.store.models import Case, CaseEvent, CaseFact, CaseState, CaseTask, CaseUnit
    from engine.store.timer_models import CaseTimer, Supervision

    def rows(session, model, case_ids):
        out: dict[int, list[dict]] = {}
        cols = [c.key for c in model.__table__.columns]
        for obj in session.scalars(sa.select(model).where(model.case_id.in_(case_ids))):
            out.setdefault(obj.case_id, []).append({c: getattr(obj, c) for c in cols})
        return out

    with rt.db.read() as session:
        columns = [c.key for c in Case.__table__.columns]
        cases = [{c: getattr(obj, c) for c in columns} for obj in session.scalars(sa.select(Case))]
        ids = [c["id"] for c in cases]
        related = {m.__tablename__: rows(session, m, ids)
                   for m in (CaseState, CaseUnit, CaseTask, CaseEvent, CaseTimer, Supervision, CaseFact)}
    start = datetime.combine(first, datetime.min.time(), rt.tz)
    return cases, related, start


def _copy(conn, table: str, rows: list[dict]) -> None:
    """Rows into a PostgreSQL table by COPY (several times the speed of INSERTs), in the connection's transaction."""
    from psycopg.types.json import Json

    columns = list(rows[0])
    with conn.connection.driver_connection.cursor() as cur:
        with cur.copy(f'COPY "{table}" ({", ".join(columns)}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row([Json(v) if isinstance(v, (dict, list)) else v for v in (row[c] for c in columns)])


MICROSECOND = timedelta(microseconds=1)


def _shifted_timeline(timeline: dict, shift_us: int) -> dict:
    """A statistics timeline (engine.store.case_facts) moved by `shift_us` microseconds, as its case is."""
    return dict(timeline, **{key: [[entry[0] + shift_us, *entry[1:]] for entry in timeline[key]]
                             for key in ("u", "r", "s", "c")})


def clone(rt, cases, related, origin: datetime, n: int, first: date, years: int, seed: int) -> dict:
    from engine.store.models import Case, CaseEvent, CaseFact, CaseState, CaseTask, CaseUnit
    from engine.store.timer_models import CaseTimer, Supervision

    rng = random.Random(seed)
    span = (datetime.combine(first.replace(year=first.year + years), datetime.min.time(), rt.tz)
            - datetime.combine(first, datetime.min.time(), rt.tz)).total_seconds() - 31 * 86400
    base = datetime.combine(first, datetime.min.time(), rt.tz)
    tables = {"case_state": CaseState, "case_unit": CaseUnit, "case_task": CaseTask, "case_event": CaseEvent,
              "case_timer": CaseTimer, "supervision": Supervision, "case_fact": CaseFact}
    written = {name: 0 for name in ["dispute_case", *tables]}
    with rt.db.engine.connect() as conn:
        next_id = (conn.execute(sa.select(sa.func.max(Case.id))).scalar() or 0) + 1
    counters: dict[int, int] = {}
    pending = {name: [] for name in written}

    postgres = rt.db.engine.dialect.name == "postgresql"

    def flush():
        with rt.db.engine.begin() as conn:
            for name, model in [("dispute_case", Case), *tables.items()]:
                if not pending[name]:
                    continue
                if postgres:
                    _copy(conn, name, pending[name])
                else:
                    conn.execute(sa.insert(model), pending[name])
        for name in pending:
            written[name] += len(pending[name])
            pending[name].clear()

    # A case still open in its template is placed in the span's last month, as open cases are recent. The
    # clones are written in the order of their instants, as a city's cases arrive: ids, case numbers and
    # the rows' places on disk follow time, so a month's cases lie together as they do in production.
    since_origin = [(t["created_at"] - origin).total_seconds() for t in cases]
    last_month = (span - 30 * 86400, span)  # each open clone at its own instant: no ties in the lists' order
    draws = [(rng.uniform(*last_month) if cases[k % len(cases)]["closed_at"] is None else rng.uniform(0, span),
              k % len(cases)) for k in range(n)]
    placed = sorted(draws, key=lambda draw: draw[0] + since_origin[draw[1]])  # by the clone's acceptance
    for k, (offset, template) in enumerate(placed):
        t = cases[template]
        shift = base + timedelta(seconds=offset) - origin
        shift_us = shift // MICROSECOND
        case_id = next_id + k
        created = t["created_at"] + shift
        year = created.astimezone(rt.tz).year
        counters[year] = counters.get(year, 0) + 1
        row = {**t, "id": case_id, "case_no": f"{year}-{counters[year]:07d}", "created_by": "generator"}
        for col in ("created_at", "updated_at", "closed_at", "replied_at", "open_due_at"):
            if row.get(col) is not None:
                row[col] = row[col] + shift
        if "reported_at" in row and row["reported_at"] is not None:
            row["reported_at"] = row["reported_at"] + shift
        pending["dispute_case"].append(row)
        task_ids = {}
        for name in tables:
            for r in related[name].get(t["id"], []):
                r = {**r, "case_id": case_id}
                if name == "case_task":
                    r["id"] = task_ids.setdefault(r["id"], str(uuid.uuid4()))
                else:
                    r.pop("id", None)  # the table numbers its own rows
                for col in ("task_id", "attached_task_id"):
                    if r.get(col):
                        r[col] = task_ids.setdefault(r[col], str(uuid.uuid4()))
                if name == "case_fact":
                    r["timeline"] = _shifted_timeline(r["timeline"], shift_us)
                for col in ("created_at", "ended_at", "due_at", "warn_at", "at", "opened_at", "closed_at",
                            "lease_until"):
                    if r.get(col) is not None:
                        r[col] = r[col] + shift
                pending[name].append(r)
        if len(pending["dispute_case"]) >= BATCH:
            flush()
    flush()
    return written


def analyze(rt) -> float:
    """Vacuum and analyze what was written, as a bulk load is finished; returns the seconds it took.

    Without it the planner estimates the scopes from an empty table's statistics until
    autovacuum comes round (a street's list hashed 250,000 rows it thought were 5,500), and
    index-only scans visit the heap for every row (no visibility map yet).
    """
    started = time.perf_counter()
    with rt.db.engine.connect() as conn:
        if rt.db.is_sqlite:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
        else:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("VACUUM (ANALYZE)")
    return time.perf_counter() - started


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--db-url", default=None, help="default: a new SQLite file under /tmp")
    parser.add_argument("--schema", default=None, help="PostgreSQL schema to fill (default: a new one)")
    parser.add_argument("--from", dest="first", default="2022-01-01")
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--templates", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    db_url = args.db_url or f"sqlite:////tmp/generated-{uuid.uuid4().hex[:8]}.db"
    started = time.perf_counter()
    rt, url = make_runtime(db_url, args.schema)
    first = date.fromisoformat(args.first)
    cases, related, origin = templates(rt, args.templates, args.seed, first)
    made = time.perf_counter()
    written = clone(rt, cases, related, origin, max(0, args.cases - len(cases)), first, args.years, args.seed)
    done = time.perf_counter()
    written["dispute_case"] += len(cases)
    vacuumed = analyze(rt)
    print(f"database: {url}")
    print(f"templates: {len(cases)} cases through the engine in {made - started:.1f} s")
    print(f"cloned: {written['dispute_case']:,} cases, {written['case_task']:,} tasks, {written['case_event']:,} "
          f"events, {written['case_timer']:,} timers, {written['supervision']:,} supervision records "
          f"in {done - made:.1f} s ({(written['dispute_case'] - len(cases)) / max(done - made, 1e-9):,.0f} cases/s)")
    print(f"vacuumed and analyzed in {vacuumed:.1f} s")


if __name__ == "__main__":
    main()
