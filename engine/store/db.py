"""Sessions, transactions and case locks, for SQLite and PostgreSQL alike.

A write transaction holds the case lock from its first statement: on
PostgreSQL a `SELECT ... FOR UPDATE` of the case row, on SQLite an immediate
write transaction (`BEGIN IMMEDIATE`, WAL mode, a busy timeout), since SQLite
locks the whole database for writing anyway. The case row also carries a
version column, so an update that lost a race is refused, never lost.

Outages: `is_unavailable(exc)` is the one rule telling "the database is away"
(refused, dropped or shut-down connections, a pool timeout, SQLite locked past
its busy timeout) from a bug; `write()` and `read()` turn such an error into
`DatabaseUnavailable` (a 503 for the API, a back-off for workers), and the pool
pre-pings its connections so the next request after an outage reconnects.

Reads (`read()`) on PostgreSQL run on an autocommit connection: at READ
COMMITTED, which the application uses, a transaction gives a series of reads
nothing (each statement sees what was committed when it began), while its
BEGIN and ROLLBACK cost two round trips, and psycopg drops its prepared
statements at every ROLLBACK (a rolled-back transaction may have dropped what
they refer to), so that every read would have the statements of the next
unit of work parsed and planned afresh. A statement that writes (INSERT,
UPDATE, DELETE) on such a connection is refused (`WriteInRead`), so nothing a
read does is ever committed. On SQLite a read is a transaction (one WAL
snapshot for all its statements).

Optimistic steps (`write(optimistic=True)`, SQLite only): SQLite lets one
writer in at a time for the whole database, so a step that held the write lock
from its first statement held it through the library's work too (load, step,
dump), and the other writers queued behind it. An optimistic write runs its
reads in an ordinary (deferred) transaction, one WAL snapshot, without the
lock; the unit of work names what it relies on (`expect_unchanged`: the case's
version and sequence number); at its first write statement the snapshot ends,
the lock is taken (`BEGIN IMMEDIATE`, in turn), and those rows are read again.
Unchanged: nothing the step read about its case has moved, so it goes on and
commits as if it had held the lock all along. Changed: `CaseMoved` is raised
and the transaction rolls back; a service decorated with `retried_when_moved`
then runs once more holding the lock from its first statement, so a step is
tried at most twice and never starves. PostgreSQL locks the case row, and its
writes hold nothing database-wide: there `optimistic` changes nothing.

`atomic()` opens one transaction that every `write()` and `read()` of the same
thread joins until it ends (a `write()` inside it is a savepoint): the HTTP
layer runs a request with an Idempotency-Key in it, so that the stored
response commits with the action or not at all.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import os
import sqlite3
import threading
import time

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import CaseMoved, DatabaseUnavailable

# PostgreSQL SQLSTATEs meaning "not now": connection exceptions (08), insufficient resources (53),
# operator intervention (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now,
# 57014 statement cancelled by a timeout), system errors (58).
PG_UNAVAILABLE = ("08", "53", "57P", "57014", "58")
SQLITE_UNAVAILABLE = ("database is locked", "database table is locked", "database is busy",
                      "unable to open database file", "disk i/o error")
DEFAULT_BUSY_TIMEOUT = 60.0
DEFAULT_RETRY_AFTER = 2

# The transaction `atomic()` holds open in this thread (or task): (database, session).
_atomic: contextvars.ContextVar = contextvars.ContextVar("dispute_atomic", default=None)
# Set by `retried_when_moved` for its second attempt: `write(optimistic=True)` then locks from the start.
_locked_retry: contextvars.ContextVar = contextvars.ContextVar("dispute_locked_retry", default=False)


def json_dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _one_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, DatabaseUnavailable):
        return True
    if isinstance(exc, (sa_exc.DisconnectionError, sa_exc.TimeoutError)):
        return True  # a pool timeout, or a dead connection the pool could not replace
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sqlite3.OperationalError):
        return str(exc).lower().startswith(SQLITE_UNAVAILABLE)
    import psycopg

    if isinstance(exc, psycopg.OperationalError):
        state = getattr(exc, "sqlstate", None)
        return state is None or state.startswith(PG_UNAVAILABLE)
    return isinstance(exc, psycopg.InterfaceError) and "closed" in str(exc).lower()


def is_unavailable(exc: BaseException) -> bool:
    """True when `exc`, or an exception it came from, means the database is unavailable (retry later).

    A schema or programming error ("no such table", a syntax error, a
    constraint) is not: retrying would not help, so it stays a bug.
    """
    return any(_one_unavailable(e) for e in _chain(exc))


def unavailable_reason(exc: BaseException) -> str:
    """One line for the log: the driver's exception class and the first line of its message."""
    for e in _chain(exc):
        if _one_unavailable(e) and not isinstance(e, DatabaseUnavailable):
            root = getattr(e, "orig", None) or e
            text = (str(root).strip().splitlines() or [""])[0]
            return f"{type(root).__name__}: {text}"[:300]
    return getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"[:300]


def engine_options(url: str, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> dict:
    """Options for `create_engine` (Flask-SQLAlchemy passes them through).

    `busy_timeout`: how long a SQLite writer waits for the lock before the
    request is answered 503 (PostgreSQL waits for row locks as long as it takes).
    """
    options: dict = {"json_serializer": json_dumps, "future": True}
    if url.startswith("sqlite"):
        options["connect_args"] = {"timeout": busy_timeout, "check_same_thread": False}
    else:
        options.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
    return options


# The execution option of `Database.single_reads` connections on SQLite: no BEGIN, each statement its own.
SINGLE_STATEMENTS = "dispute_single_statements"
# The execution options of `Database.read()` sessions on PostgreSQL: autocommit, and writes refused.
READ_ONLY = "dispute_read_only"
_READ_OPTIONS = {"isolation_level": "AUTOCOMMIT", READ_ONLY: True}
# The execution option of an optimistic write on SQLite: its `_Snapshot`.
OPTIMISTIC = "dispute_optimistic"
_WRITE_VERBS = ("INSERT", "UPDATE", "DELETE", "REPLACE", "WITH")  # WITH: a CTE may write (locking is safe)


class WriteInRead(RuntimeError):
    """A statement that writes was sent in a `Database.read()` session (a bug: writes go in `write()`)."""


def configure_engine(engine: Engine) -> Engine:
    """Attach the SQLite pragmas and the immediate-transaction hook, or PostgreSQL's session settings
    (idempotent)."""
    if getattr(engine, "_dispute_configured", False):
        return engine
    if engine.dialect.name == "postgresql":
        return _configure_postgresql(engine)
    if engine.dialect.name != "sqlite":
        return engine

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy, not pysqlite, decide where transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")  # the busy timeout is pysqlite's `timeout` connect argument
        cursor.close()

    @event.listens_for(engine, "before_cursor_execute")
    def _lock_at_first_write(conn, _cursor, statement, _parameters, context, _executemany):
        snapshot = conn.get_execution_options().get(OPTIMISTIC)
        if snapshot is not None and not snapshot.locked and _writes(statement, context):
            if conn.in_nested_transaction():  # ending the snapshot would end the savepoint too
                raise RuntimeError("an optimistic write's first write may not be inside a savepoint")
            snapshot.lock(conn.connection.dbapi_connection)

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        options = conn.get_execution_options()
        if options.get("sqlite_immediate"):
            begin_immediate(conn.connection.dbapi_connection)
        elif not options.get(SINGLE_STATEMENTS):  # Database.single_reads: pysqlite autocommits each statement
            conn.exec_driver_sql("BEGIN")

    engine._dispute_configured = True
    return engine


def _writes(statement: str, context) -> bool:
    if context is not None and (context.isinsert or context.isupdate or context.isdelete):
        return True
    return statement.lstrip().upper().startswith(_WRITE_VERBS)


def _configure_postgresql(engine: Engine) -> Engine:
    """PostgreSQL's JIT compiler off for this application's sessions (POSTGRES_JIT=on keeps the server's
    setting): its queries are index lookups and ranges of a few thousand rows, for which compiling costs
    more than it saves (a month's step ranges at 1,000,000 cases: 160 ms of JIT in a 320 ms query);
    and a write in a read session refused (`WriteInRead`: reads autocommit, see the module's docstring)."""
    @event.listens_for(engine, "before_cursor_execute")
    def _refuse_writes_in_reads(conn, _cursor, statement, _parameters, context, _executemany):
        if context is not None and (context.isinsert or context.isupdate or context.isdelete) \
                and conn.get_execution_options().get(READ_ONLY):
            raise WriteInRead(f"a read session may not write: {' '.join(statement.split()[:3])} ...")

    engine._dispute_configured = True
    if os.environ.get("POSTGRES_JIT", "off").lower() in ("on", "1", "true", "yes"):
        return engine

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True  # outside any transaction, so a rollback never undoes it
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SET jit = off")
        finally:
            dbapi_connection.autocommit = autocommit

    return engine


def begin_immediate(dbapi_connection, first_wait: float = 0.0005, longest_wait: float = 0.004) -> None:
    """`BEGIN IMMEDIATE`, waiting for the write lock in steps of a few milliseconds, up to the busy timeout.

    SQLite's own busy handler sleeps ever longer between tries (up to 100 ms),
    so with writers in several processes (gunicorn workers, a timer worker) a
    writer often sleeps long after the lock came free: a 1 ms step p50 became
    a 100 ms p99. Here the busy timeout is switched off for the attempt and
    the lock is asked for again every 0.5–4 ms until the connection's busy
    timeout has passed; then the "database is locked" error goes on as before.
    Readers (WAL) never wait, and a transaction that holds the write lock
    never waits for it again, so this is the one place writers queue.
    """
    cursor = dbapi_connection.cursor()
    try:
        timeout_ms = cursor.execute("PRAGMA busy_timeout").fetchone()[0]
        cursor.execute("PRAGMA busy_timeout = 0")
        try:
            deadline = time.monotonic() + timeout_ms / 1000
            wait = first_wait
            while True:
                try:
                    cursor.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if not str(exc).lower().startswith(("database is locked", "database is busy")) \
                            or time.monotonic() >= deadline:
                        raise
                time.sleep(wait)
                wait = min(longest_wait, wait * 2)
        finally:
            cursor.execute(f"PRAGMA busy_timeout = {int(timeout_ms)}")
    finally:
        cursor.close()


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
        self._abandoned: set[int] = set()

    def acquire(self, timeout: float | None = None) -> bool:
        """Wait for one's turn; False (and the turn given up) after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            ticket = self._next
            self._next += 1
            while ticket != self._serving:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    self._abandoned.add(ticket)
                    return False
                self._cond.wait(remaining)
        return True

    def release(self) -> None:
        with self._cond:
            self._serving += 1
            while self._serving in self._abandoned:
                self._abandoned.discard(self._serving)
                self._serving += 1
            self._cond.notify_all()

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()


class _Snapshot:
    """An optimistic write on SQLite: what its reads relied on, and whether it holds the write lock yet."""

    def __init__(self, db: "Database"):
        self.db = db
        self.locked = False
        self.expected: list[tuple[str, tuple, tuple]] = []  # (SQL, parameters, the row it read)

    def lock(self, dbapi_connection) -> None:
        """At the first write: end the reads' snapshot, take the write lock in turn, check what was read."""
        self.db.take_writer_turn()
        self.locked = True
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("COMMIT")  # the reads' transaction: it wrote nothing
            begin_immediate(dbapi_connection)
            for sql, params, seen in self.expected:
                row = cursor.execute(sql, params).fetchone()
                if row is None or tuple(row) != seen:
                    self.db.moved += 1
                    raise CaseMoved("the case changed while this step was computed; it runs again under the lock")
        finally:
            cursor.close()


def retried_when_moved(fn):
    """Decorate a service whose unit of work is a `write(optimistic=True)`: when its case moved between its
    reads and its first write (`CaseMoved`), it runs once more, holding the lock from its first statement."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CaseMoved:
            token = _locked_retry.set(True)
            try:
                return fn(*args, **kwargs)
            finally:
                _locked_retry.reset(token)

    return wrapper


class Database:
    """The engine's handle on the database: a session factory and transaction scopes."""

    def __init__(self, engine: Engine, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
                 retry_after: int = DEFAULT_RETRY_AFTER):
        self.engine = configure_engine(engine)
        self.is_sqlite = engine.dialect.name == "sqlite"
        self.busy_timeout = busy_timeout
        self.retry_after = retry_after
        self._sessions = sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)
        self._writers = FairLock() if self.is_sqlite else None
        self.moved = 0  # optimistic steps whose case moved under them (each ran again, locked)
        # Called with the session at the start of every unit of work: how the services keep what
        # they cache of the database (the organisation) in step with it.
        self.on_begin: list = []

    def _begun(self, session: Session) -> Session:
        for hook in self.on_begin:
            hook(session)
        return session

    def session(self) -> Session:
        return self._sessions()

    def unavailable(self, exc: BaseException) -> DatabaseUnavailable:
        """The domain error for a database outage, carrying the one-line reason and Retry-After."""
        return DatabaseUnavailable(retry_after=self.retry_after, reason=unavailable_reason(exc))

    def _joined(self):
        open_ = _atomic.get()
        return open_[1] if open_ is not None and open_[0] is self else None

    def take_writer_turn(self) -> None:
        """Queue behind this process's other SQLite writers (`FairLock`); `release_writer_turn` ends the turn."""
        if self._writers is not None and not self._writers.acquire(self.busy_timeout):
            raise DatabaseUnavailable(retry_after=self.retry_after,
                                      reason=f"SQLite writers queued longer than {self.busy_timeout:g} s")

    def release_writer_turn(self) -> None:
        if self._writers is not None:
            self._writers.release()

    @staticmethod
    def _rollback(session: Session) -> None:
        try:
            session.rollback()
        except Exception as rollback_error:  # the connection is gone: nothing to roll back
            if not is_unavailable(rollback_error):
                raise

    def _failed(self, session: Session, exc: BaseException) -> None:
        self._rollback(session)
        if is_unavailable(exc) and not isinstance(exc, DatabaseUnavailable):
            raise self.unavailable(exc) from exc

    @contextlib.contextmanager
    def write(self, *, optimistic: bool = False):
        """One write transaction: committed on success, rolled back on any exception.

        Inside `atomic()` it is a savepoint of that transaction instead.
        `optimistic`: on SQLite, take the write lock only at the first write
        and check what `expect_unchanged` named then (see the module's docstring).
        """
        joined = self._joined()
        if joined is not None:
            with joined.begin_nested():
                yield joined
            return
        snapshot = _Snapshot(self) if optimistic and self.is_sqlite and not _locked_retry.get() else None
        if snapshot is None:
            self.take_writer_turn()
        session = self._sessions()
        try:
            if snapshot is not None:
                session.connection(execution_options={OPTIMISTIC: snapshot})
            elif self.is_sqlite:
                session.connection(execution_options={"sqlite_immediate": True})
            yield self._begun(session)
            session.commit()
        except BaseException as exc:
            self._failed(session, exc)
            raise
        finally:
            session.close()
            if snapshot is None or snapshot.locked:
                self.release_writer_turn()

    @staticmethod
    def expect_unchanged(session: Session, sql: str, params: tuple, seen: tuple) -> None:
        """In an optimistic write that holds no lock yet: `sql` (SQLite's own, `?` parameters) must still
        return the row `seen` when the lock is taken, or the step runs again (`CaseMoved`). Elsewhere a
        no-op: the transaction already holds what it read."""
        snapshot = session.connection().get_execution_options().get(OPTIMISTIC)
        if snapshot is not None and not snapshot.locked:
            snapshot.expected.append((sql, params, tuple(seen)))

    @contextlib.contextmanager
    def read(self):
        """A session for reads, rolled back at the end (on PostgreSQL autocommit and refusing writes: see
        the module's docstring). Inside `atomic()` it is that transaction's session."""
        joined = self._joined()
        if joined is not None:
            yield joined
            return
        session = self._sessions()
        try:
            if not self.is_sqlite:
                session.connection(execution_options=_READ_OPTIONS)  # see the module's docstring
            yield self._begun(session)
        except BaseException as exc:
            self._failed(session, exc)
            raise
        else:
            self._rollback(session)
        finally:
            session.close()

    @contextlib.contextmanager
    def single_reads(self):
        """A connection (Core) on which every statement is a transaction of its own: for a read that is one
        statement, such as a request's authentication. It spares the BEGIN and ROLLBACK around it (on
        PostgreSQL two of its three round trips) and runs no `on_begin` hook: the caller reads what it needs
        of the organisation stamp itself. Inside `atomic()` it is that transaction's connection."""
        joined = self._joined()
        if joined is not None:
            yield joined.connection()
            return
        try:
            with self.engine.connect() as conn:
                if self.is_sqlite:
                    conn.execution_options(**{SINGLE_STATEMENTS: True})
                else:
                    conn.execution_options(isolation_level="AUTOCOMMIT")
                yield conn
        except BaseException as exc:
            if is_unavailable(exc) and not isinstance(exc, DatabaseUnavailable):
                raise self.unavailable(exc) from exc
            raise

    @contextlib.contextmanager
    def atomic(self):
        """One write transaction that every `write()` and `read()` in this thread joins until it ends."""
        if self._joined() is not None:
            raise RuntimeError("atomic() does not nest")
        with self.write() as session:
            token = _atomic.set((self, session))
            try:
                yield session
            finally:
                _atomic.reset(token)


class Backoff:
    """How long a worker loop waits after `DatabaseUnavailable`: doubling from `first` up to `cap` seconds.

    `failed()` records a failure and returns the wait; `reset()` records a
    success and is True when it ends a run of failures (the database is back).
    """

    def __init__(self, first: float = 0.5, cap: float = 5.0):
        self.first = first
        self.cap = cap
        self.failures = 0
        self._lock = threading.Lock()

    def failed(self) -> float:
        with self._lock:
            self.failures += 1
            return min(self.cap, self.first * 2 ** min(self.failures - 1, 16))

    def reset(self) -> bool:
        with self._lock:
            recovered, self.failures = self.failures > 0, 0
            return recovered
