"""Tables of the client systems that talk to the engine machine-to-machine.

An `ApiClient` is one outside system — an Open311 client application, the
12345 or 12348 hotline, the 110 police hand-off, the grid workers' app —
with its own API key (only its sha256 is stored), its kind (`open311` or
`intake`), the intake channel its cases carry and, for status callbacks, the
URL and shared secret of its webhook (the secret signs the callbacks, so it is
kept as given). A `CaseSource` ties a case to the system it came from and to
that system's own reference: the idempotency key, unique per system, is what
turns a retried submission into the case already made.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.base import Base, UTCDateTime


class ApiClient(Base):
    """One client system and its API key (hashed)."""

    __tablename__ = "api_client"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(20))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(12))
    callback_url: Mapped[str | None] = mapped_column(String(500))
    callback_secret: Mapped[str | None] = mapped_column(String(200))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(100))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CaseSource(Base):
    """Where a case came from: the client system, its reference, the Open311 token and media."""

    __tablename__ = "case_source"
    __table_args__ = (UniqueConstraint("client_id", "external_ref", name="uq_case_source_client_ref"),)

    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id"), primary_key=True, autoincrement=False)
    client_id: Mapped[int] = mapped_column(ForeignKey("api_client.id"), index=True)
    external_ref: Mapped[str | None] = mapped_column(String(100))
    token: Mapped[str | None] = mapped_column(String(64), unique=True)
    media_url: Mapped[str | None] = mapped_column(String(500))
    placement: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
