"""The writes of one engine operation, sent together: on PostgreSQL in one round trip.

An engine operation writes the same handful of rows every time: the case row,
its workflow state, its statistics timeline, the task rows that became ready
or ended, the events it appends, the timers that came and went, the messages
its handlers queue. Flushed by the ORM that is eight to ten statements, each a
round trip to PostgreSQL and each paying the unit of work's bookkeeping.
`WriteBatch` collects them instead (engine.core.operation sends it in `finish`):

- `execute(stmt, rows)` queues a Core INSERT, UPDATE or DELETE (the signature
  of `Session.execute`, so the writers of the log, of the timer mirror and of
  the outbox take either); an INSERT reads nothing back (no generated key);
- `objects(*instances)` queues the pending changes of ORM objects of plain
  tables: an UPDATE of the columns that changed (checked against the mapper's
  version column, like the ORM's own flush), or an INSERT of a new row whose
  every column is set. Once sent they are clean, persistent objects of the
  session, as the ORM's own flush leaves them; anything it cannot write
  this way (a row whose key or default comes from the database) is left to the
  ORM's flush.

`send()` executes what was queued, in order, each statement with its parameters
bound (the UPDATEs are built once per table and set of columns, so SQLAlchemy's
compiled cache serves them). On PostgreSQL the statements go through psycopg's
pipeline mode (https://www.psycopg.org/psycopg3/docs/advanced/pipeline.html):
they are sent without waiting for one another, and leaving the pipeline reads
all the answers at once (the version-checked UPDATE's row count among them).
An error in any of them aborts the rest and is raised as SQLAlchemy raises it
(an IntegrityError, say), and the transaction rolls back. On SQLite, where a
statement costs no round trip, they run one after the other.
"""
from __future__ import annotations

import contextlib

from sqlalchemy import bindparam, inspect, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.sql.dml import Insert

_UPDATES: dict = {}  # (table, columns, versioned) -> the UPDATE statement with its parameters bound by name


def _update_statement(table, columns: tuple, version=None):
    key = (table.name, columns, version is not None)
    statement = _UPDATES.get(key)
    if statement is None:
        where = [col == bindparam(f"k_{col.key}") for col in table.primary_key.columns]
        if version is not None:
            where.append(version == bindparam("k_version"))
        statement = table.update().where(*where).values({name: bindparam(f"v_{name}") for name in columns})
        _UPDATES[key] = statement
    return statement


class WriteBatch:
    """Statements queued in one unit of work and sent at once (see the module's docstring)."""

    def __init__(self, session):
        self.session = session
        self._statements: list = []  # (statement, parameters)
        self._checked = None  # the version-checked UPDATE (at most one is checked): (statement, parameters, what)
        self._written: list = []  # (object, [(attribute, value)] or None for an insert): made clean after

    def execute(self, statement, rows=None) -> None:
        """Queue a Core DML statement with its parameters (a list of rows: executed as many).

        An INSERT reads nothing back (`inline()`: no RETURNING of a generated key, which a pipeline could
        not answer before it syncs): the rows written this way are never needed as ORM objects.
        """
        if isinstance(rows, list) and not rows:
            return
        if isinstance(statement, Insert):
            statement = statement.inline()
        self._statements.append((statement, rows))

    def objects(self, *instances) -> None:
        """Queue the pending changes of these ORM objects (None and unchanged ones are skipped)."""
        for obj in instances:
            if obj is None:
                continue
            state = inspect(obj)
            if state.persistent:
                self._update(obj, state)
            elif state.pending or state.transient:
                self._insert(obj, state)

    def _update(self, obj, state) -> None:
        mapper = state.mapper
        table = mapper.local_table
        values, changed = {}, []
        for key in state.committed_state:
            columns = getattr(mapper.attrs.get(key), "columns", None)
            if columns is None or len(columns) != 1 or columns[0].table is not table:
                continue  # a relationship, or a column of another table: the ORM's flush writes it
            values[columns[0].key] = state.dict.get(key)
            changed.append((key, state.dict.get(key)))
        if not values:
            return
        pk = mapper.primary_key_from_instance(obj)
        params = {f"k_{col.key}": value for col, value in zip(table.primary_key.columns, pk)}
        version = mapper.version_id_col
        if version is not None:
            attribute = mapper.get_property_by_column(version).key
            params["k_version"] = old = state.dict.get(attribute)
            values[version.key] = (old or 0) + 1
            changed.append((attribute, values[version.key]))
        params.update({f"v_{name}": value for name, value in values.items()})
        statement = _update_statement(table, tuple(sorted(values)), version)
        self._written.append((obj, changed))
        if version is None:
            self._statements.append((statement, params))
            return
        if self._checked is not None:  # one is read back: an earlier versioned row goes as a plain UPDATE
            self._statements.append(self._checked[:2])
        self._checked = (statement, params, f"{table.name} {pk}")

    def _insert(self, obj, state) -> None:
        mapper = state.mapper
        values = {}
        for prop in mapper.column_attrs:
            column = prop.columns[0]
            if column.table is not mapper.local_table:
                return
            if prop.key in state.dict:
                values[column.key] = state.dict[prop.key]
            elif column.primary_key or column.default is not None or column.server_default is not None:
                return  # a key or a default the database or the ORM fills in: the ORM's flush writes it
            else:
                values[column.key] = state.dict[prop.key] = None  # never left unloaded (read back lazily)
        self._statements.append((insert(mapper.local_table).inline(), [values]))
        self._written.append((obj, None))

    def send(self) -> None:
        """Write everything queued (see the module's docstring), then mark the objects clean."""
        statements, checked, written = self._statements, self._checked, self._written
        self._statements, self._checked, self._written = [], None, []
        if not statements and checked is None:
            return
        connection = self.session.connection()
        piped = connection.dialect.name == "postgresql" and len(statements) + (checked is not None) > 1
        pipeline = connection.connection.driver_connection.pipeline() if piped else contextlib.nullcontext()
        dbapi_error = connection.dialect.loaded_dbapi.Error
        try:
            with pipeline:
                for statement, params in statements:
                    connection.execute(statement, params)
                result = connection.execute(checked[0], checked[1]) if checked is not None else None
        except DBAPIError:
            raise
        except dbapi_error as exc:  # raised as the pipeline synced: the same error SQLAlchemy's own would be
            raise DBAPIError.instance(None, None, exc, dbapi_error) from exc
        if result is not None:
            # Piped: the driver's count, read once the pipeline has synced (the result's own was taken before).
            matched = result.context.cursor.rowcount if piped else result.rowcount
            if matched != 1:
                raise StaleDataError(f"UPDATE of {checked[2]} matched {matched} rows, not 1")
        for obj, changed in written:
            if changed is None:  # inserted: now a persistent object of the session, as if loaded
                if obj in self.session:
                    self.session.expunge(obj)
                make_transient_to_detached(obj)
                self.session.add(obj)
            else:
                for key, value in changed:
                    set_committed_value(obj, key, value)
                state = inspect(obj)
                if not state.committed_state:
                    # Nothing left for the ORM: clean, as its own flush leaves an object (else every
                    # later flush of the session would walk it again to find no change).
                    state._commit_all(state.dict, self.session.identity_map)
