"""The database a benchmark runs on: a new SQLite file, or a PostgreSQL schema of its own (dropped after)."""
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
