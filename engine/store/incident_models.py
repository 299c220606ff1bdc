"""The incident table: asynchronous work that failed for good and waits for a person.

A timer whose firing keeps failing (or, later, a notification that cannot be
delivered) is retried with backoff; after the last try it opens an incident
here instead of retrying forever or vanishing. One incident is open per
(kind, source) at a time (a partial unique index): `kind` says what failed
(`timer`, `no_unit`, `notification`, ...), `source` which piece of work
(`timer:<case_timer id>`, an outbox id, ...). A later failure of the same work
bumps `tries` and `last_seen`; a successful retry resolves it.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.base import Base, UTCDateTime

OPEN, RESOLVED = "open", "resolved"


class Incident(Base):
    __tablename__ = "incident"
    __table_args__ = (
        Index("uq_incident_open_source", "kind", "source", unique=True,
              sqlite_where=text("status = 'open'"), postgresql_where=text("status = 'open'")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    source: Mapped[str] = mapped_column(String(100))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("dispute_case.id"), index=True)
    element: Mapped[str | None] = mapped_column(String(100))
    error: Mapped[str] = mapped_column(Text)
    error_type: Mapped[str | None] = mapped_column(String(100))
    details: Mapped[dict | None] = mapped_column(JSON)
    tries: Mapped[int] = mapped_column(Integer)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(10), index=True)  # open | resolved
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    resolution: Mapped[str | None] = mapped_column(Text)
