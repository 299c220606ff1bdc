"""Idempotency-Keys: run a state-changing request once per caller and key, and replay its response after.

`run_once` is the whole protocol, in the convention of payment and cloud APIs
(Stripe, the IETF Idempotency-Key draft):
- a key seen before (and not expired) with the same request hash: the stored
  response, `replayed=True`, and nothing is done again;
- the same key with a different request: `IdempotencyKeyReused` (422);
- a new key: the action runs inside `Database.atomic()`, so every unit of work
  of the service it calls joins one transaction, and the response is stored in
  that same transaction: a commit keeps both, a crash or rollback neither;
- a second request with a key whose first request is still running: on
  PostgreSQL `IdempotencyInProgress` (409, retry shortly: it then gets the
  replay); SQLite runs one writer at a time, so there the second one waits for
  the first and gets the replay.
A request that failed (an error response) stored nothing, since it changed
nothing: sending it again runs it again. Keys live `ttl_seconds` (24 h by
default); `purge_expired` deletes the expired ones (`flask idempotency purge`),
and an expired key sent again is simply new.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable

from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import IntegrityError

from engine import clock
from engine.errors import IdempotencyInProgress, IdempotencyKeyReused
from engine.store.idempotency_models import IdempotencyKey

DEFAULT_TTL = 24 * 3600


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: dict = field(default_factory=dict)
    body: str = ""
    replayed: bool = False


Action = Callable[[], StoredResponse]


def _replay(row: IdempotencyKey, request_hash: str) -> StoredResponse:
    if row.request_hash != request_hash:
        raise IdempotencyKeyReused(
            f"the Idempotency-Key {row.key!r} was already used for a different request ({row.method} {row.path})",
            errors={"Idempotency-Key": ["was already used with a different request; use a new key"]})
    return StoredResponse(row.status, dict(row.headers or {}), row.body, replayed=True)


def _find(session, owner: str, key: str) -> IdempotencyKey | None:
    return session.scalar(select(IdempotencyKey).where(IdempotencyKey.owner == owner, IdempotencyKey.key == key))


def _take_turn(session, owner: str, key: str) -> None:
    """PostgreSQL: hold the key's advisory lock to the end of the transaction, or refuse (another request has it)."""
    if session.bind.dialect.name != "postgresql":
        return  # SQLite's one writer at a time already serialises requests with one key
    lock = int.from_bytes(hashlib.sha256(f"{owner}\0{key}".encode()).digest()[:8], "big", signed=True)
    if not session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": lock}):
        raise IdempotencyInProgress(f"a request with the Idempotency-Key {key!r} is still being processed; "
                                    "retry in a moment")


def run_once(rt, owner: str, key: str, request_hash: str, method: str, path: str, action: Action,
             ttl_seconds: int = DEFAULT_TTL) -> StoredResponse:
    """The response to this request: the stored one for a key seen before, or the action's, stored with it."""
    now = clock.now()
    try:
        with rt.db.atomic() as session:
            _take_turn(session, owner, key)
            row = _find(session, owner, key)
            if row is not None and row.expires_at > now:
                return _replay(row, request_hash)
            if row is not None:  # expired, not purged yet: the key is free again
                session.delete(row)
                session.flush()
            response = action()
            session.add(IdempotencyKey(owner=owner, key=key, request_hash=request_hash, method=method,
                                       path=path[:1000], status=response.status, headers=response.headers,
                                       body=response.body, created_at=now,
                                       expires_at=now + timedelta(seconds=ttl_seconds)))
            session.flush()
            return response
    except IntegrityError:
        # Only without the advisory lock (a race no database here allows): the other request's row won.
        with rt.db.read() as session:
            row = _find(session, owner, key)
        if row is None or row.expires_at <= now:
            raise
        return _replay(row, request_hash)


def purge_expired(rt) -> int:
    """Delete every expired key; returns how many."""
    with rt.db.write() as session:
        return session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= clock.now())).rowcount


def count_keys(rt) -> int:
    with rt.db.read() as session:
        return session.scalar(select(func.count()).select_from(IdempotencyKey))
