"""The organisation and identity services: units, users, roles, API tokens.

Units live in the `unit` table (loaded by `engine.services.org_load`, changed
by `engine.services.org_admin`); users name their unit and hold roles. A token is `secrets.token_urlsafe(32)`, shown once; only its
sha256 is stored, so a leaked database does not leak working tokens.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from sqlalchemy import bindparam, select, update

from engine import clock
from engine.errors import AlreadyExists, InvalidInput, Unauthorized, UnknownUser
from engine.rules.access import ROLES, Caller, acting_roles
from engine.services.org_cache import ORG_STAMP, org_changed
from engine.store.org_models import ApiToken, AppUser, Unit, UserRole

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")
# last_used_at is a hint, not an audit trail: refresh it at most this often, so reads stay reads.
LAST_USED_GRANULARITY = timedelta(minutes=5)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


# -- units --------------------------------------------------------------------------


def unit_view(row: Unit) -> dict:
    return {"code": row.code, "name": row.name, "kind": row.kind, "level": row.level, "parent": row.parent,
            "active": bool(row.active)}


def list_units(rt) -> list[dict]:
    with rt.db.read() as session:
        return [unit_view(u) for u in session.scalars(select(Unit).order_by(Unit.code))]


# -- users ----------------------------------------------------------------------------


def _roles_of(session, user_id: int) -> list[str]:
    return sorted(session.scalars(select(UserRole.role).where(UserRole.user_id == user_id)))


def user_view(session, user: AppUser) -> dict:
    unit = session.get(Unit, user.unit_code)
    return {"username": user.username, "display_name": user.display_name, "active": user.active,
            "unit": unit_view(unit) if unit is not None else {"code": user.unit_code},
            "roles": _roles_of(session, user.id)}


def check_user_fields(session, username: str, unit_code: str, roles) -> list[str]:
    """The roles, sorted and unique, or InvalidInput naming every bad field."""
    errors: dict[str, list[str]] = {}
    if not isinstance(username, str) or not USERNAME.match(username):
        errors["username"] = ["must be 1-100 letters, digits or _.@- and start with a letter or digit"]
    if not isinstance(unit_code, str) or session.get(Unit, unit_code) is None:
        errors["unit"] = [f"unknown unit {unit_code!r}: see `flask org import` or /api/v1/admin/units"]
    roles = sorted(set([roles] if isinstance(roles, str) else roles or ()))
    unknown = [r for r in roles if not isinstance(r, str) or r not in ROLES]
    if not roles:
        errors["roles"] = ["at least one role is required"]
    elif unknown:
        errors["roles"] = [f"unknown role {r!r}: use one of {', '.join(ROLES)}" for r in unknown]
    if errors:
        raise InvalidInput("the user has invalid fields", errors=errors)
    return roles


def upsert_user(session, tables, username: str, unit_code: str, roles, display_name: str | None = None,
                *, create_only: bool = False, active: bool = True) -> tuple[AppUser, bool]:
    """Create the user, or bring an existing one in line; returns (user, changed)."""
    roles = check_user_fields(session, username, unit_code, roles)
    user = session.scalar(select(AppUser).where(AppUser.username == username))
    if user is not None and create_only:
        raise AlreadyExists(f"user {username} already exists", errors={"username": ["already exists"]})
    if user is None:
        user = AppUser(username=username, display_name=display_name or username, unit_code=unit_code,
                       active=active, created_at=clock.now())
        session.add(user)
        session.flush()
        session.add_all(UserRole(user_id=user.id, role=r) for r in roles)
        return user, True
    changed = False
    for attr, value in (("unit_code", unit_code), ("display_name", display_name or user.display_name),
                        ("active", active)):
        if getattr(user, attr) != value:
            setattr(user, attr, value)
            changed = True
    held = set(_roles_of(session, user.id))
    for role in set(roles) - held:
        session.add(UserRole(user_id=user.id, role=role))
        changed = True
    for role in held - set(roles):
        session.delete(session.get(UserRole, (user.id, role)))
        changed = True
    return user, changed


def create_user(rt, username: str, unit_code: str, roles, display_name: str | None = None) -> dict:
    """A new user in a unit of the organisation, with their roles (a duplicate is refused)."""
    from engine.services.org_load import ensure_units, finish_change

    with rt.db.write() as session:
        before = ensure_units(session, rt)
        user, _ = upsert_user(session, rt.tables, username, unit_code, roles, display_name, create_only=True)
        session.flush()
        finish_change(session, rt, before, allow_gaps=True, what=f"user {username} created")
        view = user_view(session, user)
    org_changed(rt)
    return view


def _find_user(session, username: str) -> AppUser:
    user = session.scalar(select(AppUser).where(AppUser.username == username)) \
        if isinstance(username, str) and USERNAME.match(username) else None
    if user is None:
        raise UnknownUser(f"user {username!r} does not exist")
    return user


def issue_token_for(session, user: AppUser, *, revoke_others: bool = False) -> str:
    if revoke_others:
        session.execute(update(ApiToken).where(ApiToken.user_id == user.id).values(revoked=True))
    token = secrets.token_urlsafe(32)
    session.add(ApiToken(token_hash=hash_token(token), user_id=user.id, created_at=clock.now(), revoked=False))
    return token


def issue_token(rt, username: str, *, revoke_others: bool = False) -> str:
    """A new bearer token for the user, returned once (only its hash is kept)."""
    with rt.db.write() as session:
        return issue_token_for(session, _find_user(session, username), revoke_others=revoke_others)


def list_users(rt) -> list[dict]:
    with rt.db.read() as session:
        return [user_view(session, u) for u in session.scalars(select(AppUser).order_by(AppUser.username))]


# -- authentication -------------------------------------------------------------------


def caller_of(session, tables, user, roles=None) -> Caller:
    """The Caller of a user (an AppUser, or a row with its username, display_name and unit_code); their
    roles are read unless given."""
    unit = tables.units.get(user.unit_code)
    kind = unit.kind if unit is not None else session.scalar(select(Unit.kind).where(Unit.code == user.unit_code))
    return Caller(username=user.username, display_name=user.display_name, unit_code=user.unit_code,
                  unit_kind=kind or "", roles=frozenset(_roles_of(session, user.id) if roles is None else roles))


_TOKEN, _USER, _ROLE = ApiToken.__table__, AppUser.__table__, UserRole.__table__
# The token, its user, the user's roles (one row per role) and the organisation stamp, in one statement and
# one round trip: every API request runs it. Built once, the token's digest bound at each call.
_AUTHENTICATE = (select(_TOKEN.c.id, _TOKEN.c.revoked, _TOKEN.c.last_used_at, _USER.c.username,
                        _USER.c.display_name, _USER.c.unit_code, _USER.c.active, _ROLE.c.role,
                        ORG_STAMP.label("org_version"))
                 .join(_USER, _USER.c.id == _TOKEN.c.user_id).outerjoin(_ROLE, _ROLE.c.user_id == _USER.c.id)
                 .where(_TOKEN.c.token_hash == bindparam("digest")))


def authenticate(rt, token: str | None) -> Caller:
    """The caller a bearer token belongs to, or Unauthorized (unknown, revoked, inactive user)."""
    if not token:
        raise Unauthorized("an API token is required: send 'Authorization: Bearer <token>'")
    digest = hash_token(token)
    now = clock.now()
    with rt.db.single_reads() as conn:
        rows = conn.execute(_AUTHENTICATE, {"digest": digest}).all()
        if not rows or rows[0].revoked or not rows[0].active:
            raise Unauthorized("the API token is not valid")
        found = rows[0]
        if rt.org_cache is not None and not rt.org_cache.holds(found.org_version):
            org_changed(rt)  # another process changed the organisation: this one's snapshot first
        caller = caller_of(conn, rt.tables, found, roles=[r.role for r in rows if r.role is not None])
        stale = found.last_used_at is None or found.last_used_at < now - LAST_USED_GRANULARITY
    if stale:
        with rt.db.write() as session:
            session.execute(update(ApiToken).where(ApiToken.id == found.id).values(last_used_at=now))
    return caller


def describe_caller(rt, caller: Caller) -> dict:
    """Who the caller is, their unit and roles, and which task roles they may work on."""
    unit = rt.tables.units.get(caller.unit_code)
    return {
        "username": caller.username, "display_name": caller.display_name,
        "unit": {"code": caller.unit_code, "name": unit.name if unit else None, "kind": caller.unit_kind,
                 "level": rt.tables.level_of(caller.unit_code), "parent": unit.parent if unit else None},
        "roles": sorted(caller.roles), "acts_as": sorted(acting_roles(rt.tables, caller)),
    }
