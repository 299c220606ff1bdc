"""Sessions, transactions and case locks, for SQLite and PostgreSQL alike.

A write transaction holds the case lock from its first statement: on
PostgreSQL a `SELECT ... FOR UPDATE` of the case row, on SQLite an immediate
write transaction (`BEGIN IMMEDIATE`, WAL mode, a busy timeout), since SQLite
locks the whole database for writing anyway. The case row also carries a
version column, so an update that lost a race is refused, never lost.
"""
from __future__ import annotations

import contextlib
import json
import threading

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker


def json_dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def engine_options(url: str) -> dict:
    """Options for `create_engine` (Flask-SQLAlchemy passes them through)."""
    options: dict = {"json_serializer": json_dumps, "future": True}
    if url.startswith("sqlite"):
        options["connect_args"] = {"timeout": 60, "check_same_thread": False}
    else:
        options.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
    return options


def configure_engine(engine: Engine) -> Engine:
    """Attach the SQLite pragmas and the immediate-transaction hook (idempotent)."""
    if engine.dialect.name != "sqlite" or getattr(engine, "_dispute_configured", False):
        return engine

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy, not pysqlite, decide where transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        if conn.get_execution_options().get("sqlite_immediate"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    engine._dispute_configured = True
    return engine


class FairLock:
    """A first-come, first-served lock (a ticket lock).

    SQLite lets one writer in at a time and wakes waiting writers by polling,
    so a thread that commits and begins again at once starves the others (a
    timer worker firing a backlog would starve its own refill). In-process
    writers therefore queue here, in order, before asking SQLite.
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._next = 0
        self._serving = 0

    def __enter__(self):
        with self._cond:
            ticket = self._next
            self._next += 1
            while ticket != self._serving:
                self._cond.wait()
        return self

    def __exit__(self, *exc):
        with self._cond:
            self._serving += 1
            self._cond.notify_all()


class Database:
    """The engine's handle on the database: a session factory and transaction scopes."""

    def __init__(self, engine: Engine):
        self.engine = configure_engine(engine)
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._sessions = sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)
        self._writers = FairLock() if self.is_sqlite else contextlib.nullcontext()
        # Called with the session at the start of every unit of work: how the services keep what
        # they cache of the database (the organisation) in step with it.
        self.on_begin: list = []

    def _begun(self, session: Session) -> Session:
        for hook in self.on_begin:
            hook(session)
        return session

    def session(self) -> Session:
        return self._sessions()

    @contextlib.contextmanager
    def write(self):
        """One write transaction: committed on success, rolled back on any exception."""
        with self._writers:
            session = self._sessions()
            try:
                if self.is_sqlite:
                    session.connection(execution_options={"sqlite_immediate": True})
                yield self._begun(session)
                session.commit()
            except BaseException:
                session.rollback()
                raise
            finally:
                session.close()

    @contextlib.contextmanager
    def read(self):
        session = self._sessions()
        try:
            yield self._begun(session)
        finally:
            session.rollback()
            session.close()
