"""Tables of the organisation and of identity, beside the case tables.

Units are the organisation the engine runs on (`flask org import`, the
administrators' API, `flask seed demo` load them; deactivated, never deleted).
Users belong to one unit and hold roles; API tokens are stored only as
sha256 hashes. Case comments (沟通协作) are the messages units exchange on a
case: they never touch the workflow, so they live in their own table rather
than in the case's event log.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.base import Base, UTCDateTime


class Unit(Base):
    """One unit of the organisation tree: code, Chinese name, kind, level and parent."""

    __tablename__ = "unit"

    code: Mapped[str] = mapped_column(String(50), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(30))
    level: Mapped[str] = mapped_column(String(20))
    parent: Mapped[str | None] = mapped_column(ForeignKey("unit.code"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Where notifications reach it (the outbox dispatcher): see engine.services.outbox.contact_of.
    phone: Mapped[str | None] = mapped_column(String(30))
    email: Mapped[str | None] = mapped_column(String(200))
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    webhook_secret: Mapped[str | None] = mapped_column(String(200))
    notify_channel: Mapped[str | None] = mapped_column(String(10))


class OrgVersion(Base):
    """The organisation's version stamp: one row, bumped by every change to units, users or roles.

    Each worker keeps a snapshot of the unit tree and reloads it when this number moves, so
    a change made through one worker is seen by every other at their next unit of work.
    """

    __tablename__ = "org_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AppUser(Base):
    """A person using the system, in one unit."""

    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    unit_code: Mapped[str] = mapped_column(ForeignKey("unit.code"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Where notifications reach it (the outbox dispatcher): see engine.services.outbox.contact_of.
    phone: Mapped[str | None] = mapped_column(String(30))
    email: Mapped[str | None] = mapped_column(String(200))
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    webhook_secret: Mapped[str | None] = mapped_column(String(200))
    notify_channel: Mapped[str | None] = mapped_column(String(10))
    # The web console's sign-in (engine.services.signin): a werkzeug.security hash, never the password.
    password_hash: Mapped[str | None] = mapped_column(String(255))


class UserRole(Base):
    """One role held by one user (in the user's unit)."""

    __tablename__ = "user_role"

    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(30), primary_key=True)


class ApiToken(Base):
    """A bearer token, as the sha256 of the token; the token itself is shown once and never stored."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class CaseComment(Base):
    """A message between the units working on a case, in the order written."""

    __tablename__ = "case_comment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id"), index=True)
    author: Mapped[str] = mapped_column(String(100))
    unit_code: Mapped[str] = mapped_column(String(50))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
