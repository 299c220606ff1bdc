"""People's sign-in to the web console: passwords, checked and set.

Only a werkzeug.security hash is stored (scrypt, salted), never the password.
A signed-in browser session carries the username and a stamp of the hash it
signed in with: setting a new password (or deactivating the user) ends every
session opened before, at its next request. API bearer tokens are unaffected
(engine.services.org). Demo users get the one documented demo password
(`DEMO_PASSWORD`) from `flask demo` / `flask seed demo`, never in production.
"""
from __future__ import annotations

import hashlib
from functools import cache

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from engine.errors import InvalidInput, Unauthorized
from engine.rules.access import Caller
from engine.services.org import USERNAME, _find_user, caller_of
from engine.store.org_models import AppUser

METHOD = "scrypt"
MIN_LENGTH = 8
MAX_LENGTH = 200
DEMO_PASSWORD = "demo1234"
# Checked against when the username is unknown, so a wrong name costs the same time as a wrong password.
@cache
def _dummy() -> str:
    return generate_password_hash("not a password of anyone", method=METHOD)


def stamp_of(password_hash: str | None) -> str:
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]


def check_password_rules(password) -> None:
    if not isinstance(password, str) or not MIN_LENGTH <= len(password) <= MAX_LENGTH or "\x00" in password:
        raise InvalidInput("the password is not acceptable",
                           errors={"password": [f"must be {MIN_LENGTH}-{MAX_LENGTH} characters, no NUL"]})


def set_password(rt, username: str, password: str) -> dict:
    """Set (or replace) a user's console password; earlier console sessions end."""
    check_password_rules(password)
    with rt.db.write() as session:
        user = _find_user(session, username)
        user.password_hash = generate_password_hash(password, method=METHOD)
        return {"username": user.username}


def set_demo_passwords(rt, usernames: list[str], password: str = DEMO_PASSWORD) -> int:
    """Give the demo users without a password the demo password; returns how many got it."""
    with rt.db.write() as session:
        users = session.scalars(select(AppUser).where(AppUser.username.in_(usernames),
                                                      AppUser.password_hash.is_(None))).all()
        for user in users:
            user.password_hash = generate_password_hash(password, method=METHOD)
        return len(users)


def sign_in(rt, username: str, password: str) -> tuple[Caller, str]:
    """The caller and their session stamp, or Unauthorized (unknown user, wrong password, inactive)."""
    with rt.db.read() as session:
        user = session.scalar(select(AppUser).where(AppUser.username == username)) \
            if isinstance(username, str) and USERNAME.match(username) else None
        stored = user.password_hash if user is not None and user.password_hash else _dummy()
        good = isinstance(password, str) and check_password_hash(stored, password)
        if user is None or not user.password_hash or not good or not user.active:
            raise Unauthorized("the username or the password is wrong")
        return caller_of(session, rt.tables, user), stamp_of(user.password_hash)


def session_caller(rt, username: str | None, stamp: str | None) -> Caller:
    """The caller of a console session, or Unauthorized once the user or their password changed."""
    if not username or not stamp:
        raise Unauthorized("not signed in")
    with rt.db.read() as session:
        user = session.scalar(select(AppUser).where(AppUser.username == username))
        if user is None or not user.active or not user.password_hash or stamp_of(user.password_hash) != stamp:
            raise Unauthorized("the session has ended: sign in again")
        return caller_of(session, rt.tables, user)
