"""Each worker's snapshot of the organisation, kept in step with the database by a version stamp.

The unit tree is read on every request (scope, candidates, the unit of each
ladder level), so each process keeps it in memory as an immutable
`Organisation` on `rt.tables.org`. Every change to units, users or roles bumps
the one `org_version` row in the same transaction (`bump_org_version`); at the
start of every unit of work the cache reads that number (one primary-key
read) and reloads the units when it moved. A change committed through one
worker is therefore seen by every other at its next unit of work, with no
restart. Users and roles are not cached: authentication reads them each time.

While the database holds no unit at all (a fresh instance), the engine reads
the tree of `processes/organisation.toml`.
"""
from __future__ import annotations

import logging
import threading

from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError, ProgrammingError

from engine import clock
from engine.rules.organisation import Organisation
from engine.rules.organisation import Unit as UnitRule
from engine.store.db import READ_ONLY
from engine.store.org_models import OrgVersion, Unit

log = logging.getLogger(__name__)


_VERSION = OrgVersion.__table__
_READ_VERSION = select(_VERSION.c.version).where(_VERSION.c.id == 1)  # built once: read by every unit of work
# The stamp as a column of another query (a request's authentication reads it with the token).
ORG_STAMP = _READ_VERSION.scalar_subquery()


def read_org_version(session) -> int:
    # Core on the session's connection: this runs at the start of every unit of work, so skip the ORM.
    return session.connection().scalar(_READ_VERSION) or 0


def lock_org(session) -> None:
    """Serialise organisation changes: the stamp's row, locked (SQLite's write transaction is exclusive anyway)."""
    session.execute(select(OrgVersion.id).where(OrgVersion.id == 1).with_for_update())


def bump_org_version(session) -> int:
    """Move the stamp (creating its row if need be); also serialises concurrent organisation changes."""
    now = clock.now()
    if session.execute(update(OrgVersion).where(OrgVersion.id == 1)
                       .values(version=OrgVersion.version + 1, changed_at=now)).rowcount == 0:
        session.add(OrgVersion(id=1, version=1, changed_at=now))
        session.flush()
    return read_org_version(session)


def org_from_session(session, fallback: Organisation | None = None) -> Organisation:
    """The unit tree as this transaction sees it (or `fallback` while the table is empty)."""
    rows = session.scalars(select(Unit)).all()
    if not rows and fallback is not None:
        return fallback
    return Organisation((UnitRule(r.code, r.name, r.kind, r.parent, bool(r.active)) for r in rows),
                        version=read_org_version(session))


def org_changed(rt) -> None:
    """After an organisation change committed: bring this process's snapshot up to date at once."""
    with rt.db.read():
        pass  # the session's start refreshes the snapshot


class OrgCache:
    """Swaps a fresh snapshot into `tables.org` whenever the database's stamp differs from the one held."""

    def __init__(self, tables):
        self.tables = tables
        self.version: int | None = None
        self._ready = False  # the stamp's table answered once (not before `flask db upgrade`)
        self._lock = threading.Lock()

    def refresh(self, session) -> None:
        version = self._read(session)
        if version is None or version == self.version:
            return
        org = org_from_session(session, self.tables.file_org)
        with self._lock:
            self.tables.org = org
            self.version = version
        log.info("organisation version %s loaded (%d units)", version, len(org.units))

    def holds(self, version: int | None) -> bool:
        """Whether the snapshot held is the one of this stamp (as read by a query of the caller's own)."""
        return self._ready and self.version == (version or 0)

    def _read(self, session) -> int | None:
        if self._ready:
            return read_org_version(session)
        try:
            if session.connection().get_execution_options().get(READ_ONLY):
                version = read_org_version(session)  # autocommit (a read on PostgreSQL): no transaction to spoil
            else:
                with session.begin_nested():  # a missing table must not spoil the caller's transaction
                    version = read_org_version(session)
        except (OperationalError, ProgrammingError):
            return None
        self._ready = True
        return version
