"""Reads (`Database.read()`): on PostgreSQL outside any transaction, keeping the connection's prepared
statements, and refusing to write; on SQLite one transaction (one WAL snapshot)."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select, text, update

from engine.store.db import WriteInRead
from engine.store.org_models import Unit


def test_a_read_keeps_the_prepared_statements_of_the_connection(rt):
    if rt.db.is_sqlite:
        pytest.skip("PostgreSQL: psycopg prepares a statement used five times on a connection")
    query = select(func.count()).select_from(Unit).where(Unit.active.is_(True))
    for _ in range(30):  # one a read: each of the pool's connections (at most five here) sees it six times
        with rt.db.read() as session:
            session.execute(query).scalar_one()
    with rt.db.read() as session:
        prepared = session.execute(text("SELECT statement FROM pg_prepared_statements")).scalars().all()
    # A ROLLBACK would have made psycopg deallocate them all (DEALLOCATE ALL), so that the next unit
    # of work parsed and planned every statement afresh.
    assert any("FROM unit" in statement for statement in prepared), prepared


def test_a_write_in_a_read_is_refused_and_changes_nothing(rt, demo):
    with rt.db.read() as session:
        name = session.scalar(select(Unit.name).where(Unit.code == "XL-XLJD-YJP"))
    rename = update(Unit).where(Unit.code == "XL-XLJD-YJP").values(name="改名")
    if rt.db.is_sqlite:
        with rt.db.read() as session:  # a transaction of its own, rolled back at the end
            session.execute(rename)
    else:
        with pytest.raises(WriteInRead, match="UPDATE"):
            with rt.db.read() as session:
                session.execute(rename)
    with rt.db.read() as session:
        assert session.scalar(select(Unit.name).where(Unit.code == "XL-XLJD-YJP")) == name
