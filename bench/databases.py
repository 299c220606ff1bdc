"""The database a benchmark runs on (a new SQLite file, or a PostgreSQL schema of its own, dropped after), and what a case stores in it."""
from __future__ import annotations

import tempfile
import uuid

import sqlalchemy as sa


def bench_database(db_url: str | None, prefix: str = "bench"):
    """(URL to use, cleanup callable or None): a fresh SQLite file when `db_url` is None, else a new schema."""
    if db_url is None:
        return f"sqlite:///{tempfile.mkdtemp(prefix=f'{prefix}-')}/bench.db", None
    if not db_url.startswith("postgresql"):
        return db_url, None
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(db_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

    def cleanup():
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return f"{db_url}{'&' if '?' in db_url else '?'}options=-csearch_path%3D{schema}", cleanup


def stored_bytes(rt, first_id: int, n_cases: int) -> tuple[float, float | None]:
    """(logical bytes per closed case, on-disk bytes per case on PostgreSQL or None).

    Logical: the length of every value of every row the case owns (case row with its
    state, tasks, events, statistics timeline, outbox, timers, supervision records). On PostgreSQL also
    pg_column_size of those rows (after TOAST compression, without indexes).
    """
    from engine.store.db import json_dumps
    from engine.store.models import Case, CaseEvent, CaseFact, CaseState, CaseTask, CaseUnit, Outbox
    from engine.store.timer_models import CaseTimer, Supervision

    models = [Case, CaseState, CaseUnit, CaseTask, CaseEvent, CaseFact, Outbox, CaseTimer, Supervision]
    total = 0
    disk = 0 if rt.db.engine.dialect.name == "postgresql" else None
    with rt.db.read() as s:
        for model in models:
            key = model.id if model is Case else model.case_id
            for row in s.scalars(sa.select(model).where(key >= first_id, key < first_id + n_cases)):
                for col in model.__table__.columns:
                    v = getattr(row, col.key)
                    if v is None:
                        continue
                    if isinstance(v, (bytes, str)):
                        total += len(v if isinstance(v, bytes) else v.encode())
                    elif isinstance(v, (dict, list)):
                        total += len(json_dumps(v).encode())
                    else:
                        total += 8
            if disk is not None:
                table = model.__tablename__
                col = "id" if model is Case else "case_id"
                disk += s.execute(sa.text(f'SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM "{table}" t '
                                          f"WHERE {col} >= :a AND {col} < :b"),
                                  {"a": first_id, "b": first_id + n_cases}).scalar()
    return total / n_cases, (disk / n_cases if disk is not None else None)
