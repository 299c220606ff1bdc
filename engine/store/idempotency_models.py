"""The table of Idempotency-Keys: each key a caller sent, the request it came with, and the response given.

One row per (owner, key): `owner` is the caller (a user's name, or a client
system), `request_hash` the SHA-256 of method, path, query and canonical body.
The row is written in the same transaction as the action it records, with the
status, headers and body of the response, so a committed action always has
its response stored and a rolled-back one never has. Rows expire at
`expires_at` and are purged after it.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.base import Base, UTCDateTime


class IdempotencyKey(Base):
    __tablename__ = "idempotency_key"
    __table_args__ = (
        UniqueConstraint("owner", "key", name="uq_idempotency_key_owner_key"),
        Index("ix_idempotency_key_expires", "expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(1000))
    status: Mapped[int] = mapped_column(Integer)
    headers: Mapped[dict] = mapped_column(JSON)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
