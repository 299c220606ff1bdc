"""Client systems and their API keys: create, list, revoke, authenticate.

Administrators register each outside system once (`flask apikeys create`, or
`POST /api/v1/admin/apikeys`): an Open311 client application (kind `open311`)
or an integrated intake system (kind `intake`: the 12345 and 12348 hotlines,
the 110 police hand-off, the grid workers' app), each with the intake channel
its cases carry and, optionally, a callback URL and secret for status
webhooks. A key is `o311_` or `sys_` and `secrets.token_urlsafe(32)`, shown
once; only its sha256 is stored (the same hashing as the users' tokens).
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlparse

from sqlalchemy import select, update

from engine import clock
from engine.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from engine.rules.intake import CHANNELS
from engine.services.org import hash_token
from engine.store.client_models import ApiClient

KINDS = {"open311": "o311_", "intake": "sys_"}
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
LAST_USED_GRANULARITY = timedelta(minutes=5)


class ClientNotFound(NotFound):
    code = "api_client_not_found"


@dataclass(frozen=True)
class Client:
    """An authenticated client system, as the services need it."""

    id: int
    name: str
    kind: str
    channel: str


def client_view(row: ApiClient) -> dict:
    return {"id": row.id, "name": row.name, "kind": row.kind, "channel": row.channel,
            "key_prefix": row.key_prefix, "callback_url": row.callback_url,
            "has_callback_secret": bool(row.callback_secret), "revoked": row.revoked,
            "created_at": row.created_at.isoformat(), "created_by": row.created_by,
            "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None}


def _check(name, kind, channel, callback_url, callback_secret) -> None:
    errors: dict[str, list[str]] = {}
    if not isinstance(name, str) or not NAME.match(name):
        errors["name"] = ["must be 1-100 letters, digits or _.- and start with a letter or digit"]
    if kind not in KINDS:
        errors["kind"] = [f"must be one of: {', '.join(KINDS)}"]
    if channel not in CHANNELS:
        errors["channel"] = [f"must be one of: {', '.join(CHANNELS)}"]
    if callback_url is not None:
        try:
            url = urlparse(callback_url) if isinstance(callback_url, str) else None
        except ValueError:  # e.g. a broken IPv6 host
            url = None
        if url is None or url.scheme not in ("http", "https") or not url.netloc or len(callback_url) > 500:
            errors["callback_url"] = ["must be an http(s) URL of at most 500 characters"]
    if callback_secret is not None and (not isinstance(callback_secret, str) or not 16 <= len(callback_secret) <= 200):
        errors["callback_secret"] = ["must be 16 to 200 characters"]
    if callback_secret is not None and callback_url is None:
        errors.setdefault("callback_url", []).append("a callback secret needs a callback URL")
    if errors:
        raise InvalidInput("the client system has invalid fields", errors=errors)


def create_client(rt, name: str, kind: str, channel: str, *, callback_url: str | None = None,
                  callback_secret: str | None = None, created_by: str = "admin") -> dict:
    """Register a client system; the answer carries its API key, the only time it is shown."""
    _check(name, kind, channel, callback_url, callback_secret)
    key = KINDS[kind] + secrets.token_urlsafe(32)
    with rt.db.write() as session:
        if session.scalar(select(ApiClient.id).where(ApiClient.name == name)) is not None:
            raise InvalidInput(f"client system {name} already exists", errors={"name": ["already exists"]})
        row = ApiClient(name=name, kind=kind, channel=channel, key_hash=hash_token(key), key_prefix=key[:10],
                        callback_url=callback_url, callback_secret=callback_secret, revoked=False,
                        created_at=clock.now(), created_by=created_by)
        session.add(row)
        session.flush()
        return dict(client_view(row), api_key=key)


def list_clients(rt) -> list[dict]:
    with rt.db.read() as session:
        return [client_view(r) for r in session.scalars(select(ApiClient).order_by(ApiClient.name))]


def revoke_client(rt, name_or_id: str) -> dict:
    """Revoke a client system's key (its cases and references stay)."""
    with rt.db.write() as session:
        ident = str(name_or_id)
        stmt = select(ApiClient).where(ApiClient.id == int(ident)) if ident.isdigit() and len(ident) < 10 \
            else select(ApiClient).where(ApiClient.name == ident)
        row = session.scalar(stmt)
        if row is None:
            raise ClientNotFound(f"client system {name_or_id} does not exist")
        row.revoked = True
        return client_view(row)


def authenticate_client(rt, key: str | None, kind: str) -> Client:
    """The client system an API key belongs to: Unauthorized if missing or unknown, Forbidden if of another kind."""
    if not key:
        raise Unauthorized("an API key is required")
    now = clock.now()
    with rt.db.read() as session:
        row = session.scalar(select(ApiClient).where(ApiClient.key_hash == hash_token(key)))
        if row is None or row.revoked:
            raise Unauthorized("the API key is not valid")
        if row.kind != kind:
            raise Forbidden(f"the API key of {row.name} is for {row.kind}, not {kind}")
        client = Client(row.id, row.name, row.kind, row.channel)
        stale = row.last_used_at is None or row.last_used_at < now - LAST_USED_GRANULARITY
    if stale:
        with rt.db.write() as session:
            session.execute(update(ApiClient).where(ApiClient.id == client.id).values(last_used_at=now))
    return client
