"""The administrators' use cases on units and users (role `admin`), one unit of work each.

Each change locks the organisation, applies itself, and then must leave
nothing on an inactive unit (no open task, open case, active user or active
unit under it: 409 `unit_in_use` naming them) and add no gap to
`check_organisation` (409 `organisation_gaps` naming each), unless
`allow_gaps` is given, when the new gaps are logged as warnings and returned.
Units and users are deactivated, never deleted. The change bumps the
organisation's version stamp, so every worker sees it at its next request.
"""
from __future__ import annotations

from sqlalchemy import select

from engine.errors import AlreadyExists, Conflict, InvalidInput, UnitNotFound
from engine.rules.access import require_admin
from engine.services.org import _find_user, issue_token_for, unit_view, upsert_user, user_view
from engine.services.org_cache import org_changed
from engine.services.org_load import check_tree, ensure_units, finish_change, unit_field_errors
from engine.store.org_models import AppUser, Unit, UserRole


def _unit(session, code: str) -> Unit:
    unit = session.get(Unit, code) if isinstance(code, str) else None
    if unit is None:
        raise UnitNotFound(f"unit {code!r} does not exist")
    return unit


def _check_parent(session, code: str, parent: str | None) -> None:
    if parent is None:
        return
    if session.get(Unit, parent) is None:
        raise InvalidInput(f"unknown parent unit {parent!r}", errors={"parent": [f"unknown unit {parent!r}"]})
    parents = dict(session.execute(select(Unit.code, Unit.parent)).all())
    parents[code] = parent
    problems = check_tree(parents)
    if code in problems:
        raise InvalidInput(problems[code][0], errors={"parent": problems[code]})


def _done(session, rt, before, allow_gaps: bool, what: str, view: dict) -> dict:
    check = finish_change(session, rt, before, allow_gaps=allow_gaps, what=what)
    return dict(view, allowed_gaps=check["allowed_gaps"])


def _changes_org(fn):
    """Run the change, then refresh this worker's snapshot (others refresh at their next unit of work)."""
    def wrapper(rt, *args, **kwargs):
        result = fn(rt, *args, **kwargs)
        org_changed(rt)
        return result

    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    return wrapper


# -- units ------------------------------------------------------------------------------


def admin_list_units(rt, caller, query: dict) -> list[dict]:
    require_admin(caller)
    stmt = select(Unit).order_by(Unit.code)
    for key, column in (("active", Unit.active), ("kind", Unit.kind), ("parent", Unit.parent)):
        if query.get(key) is not None:
            stmt = stmt.where(column == query[key])
    with rt.db.read() as session:
        return [unit_view(u) for u in session.scalars(stmt)]


@_changes_org
def admin_create_unit(rt, caller, body: dict, *, allow_gaps: bool = False) -> dict:
    """A new unit under an existing parent (create it inactive to staff it before it takes cases)."""
    require_admin(caller)
    errors = unit_field_errors(body)
    if errors:
        raise InvalidInput("the unit has invalid fields", errors=errors)
    with rt.db.write() as session:
        before = ensure_units(session, rt)
        if session.get(Unit, body["code"]) is not None:
            raise AlreadyExists(f"unit {body['code']} already exists", errors={"code": ["already exists"]})
        _check_parent(session, body["code"], body.get("parent"))
        unit = Unit(code=body["code"], name=body["name"].strip(), kind=body["kind"], level=body["kind"][:20],
                    parent=body.get("parent"), active=body.get("active", True))
        session.add(unit)
        session.flush()
        return _done(session, rt, before, allow_gaps, f"unit {unit.code} created", unit_view(unit))


@_changes_org
def admin_update_unit(rt, caller, code: str, body: dict, *, allow_gaps: bool = False) -> dict:
    """Rename, re-kind, move (parent) or (de)activate a unit."""
    require_admin(caller)
    errors = unit_field_errors(body, partial=True)
    if "code" in body:
        errors["code"] = ["a unit's code cannot change; create a new unit and deactivate this one"]
    if errors:
        raise InvalidInput("the unit has invalid fields", errors=errors)
    with rt.db.write() as session:
        before = ensure_units(session, rt)
        unit = _unit(session, code)
        if "parent" in body:
            _check_parent(session, code, body["parent"])
        for key in ("name", "kind", "parent", "active"):
            if key in body:
                setattr(unit, key, body[key].strip() if key == "name" else body[key])
        session.flush()
        return _done(session, rt, before, allow_gaps, f"unit {code} updated", unit_view(unit))


def admin_deactivate_unit(rt, caller, code: str, *, allow_gaps: bool = False) -> dict:
    return admin_update_unit(rt, caller, code, {"active": False}, allow_gaps=allow_gaps)


# -- users ------------------------------------------------------------------------------


def admin_list_users(rt, caller, query: dict) -> list[dict]:
    require_admin(caller)
    stmt = select(AppUser).order_by(AppUser.username)
    if query.get("unit") is not None:
        stmt = stmt.where(AppUser.unit_code == query["unit"])
    if query.get("active") is not None:
        stmt = stmt.where(AppUser.active.is_(query["active"]))
    if query.get("role") is not None:
        stmt = stmt.where(AppUser.id.in_(select(UserRole.user_id).where(UserRole.role == query["role"])))
    with rt.db.read() as session:
        return [user_view(session, u) for u in session.scalars(stmt)]


@_changes_org
def admin_create_user(rt, caller, body: dict, *, allow_gaps: bool = False) -> dict:
    require_admin(caller)
    with rt.db.write() as session:
        before = ensure_units(session, rt)
        user, _ = upsert_user(session, rt.tables, body.get("username"), body.get("unit"), body.get("roles"),
                              body.get("display_name"), create_only=True, active=body.get("active", True))
        session.flush()
        return _done(session, rt, before, allow_gaps, f"user {user.username} created", user_view(session, user))


@_changes_org
def admin_update_user(rt, caller, username: str, body: dict, *, allow_gaps: bool = False) -> dict:
    """Move a user to another unit, change their roles or display name, (de)activate them."""
    require_admin(caller)
    with rt.db.write() as session:
        before = ensure_units(session, rt)
        user = _find_user(session, username)
        roles = body["roles"] if "roles" in body else sorted(session.scalars(
            select(UserRole.role).where(UserRole.user_id == user.id)))
        user, _ = upsert_user(session, rt.tables, user.username, body.get("unit", user.unit_code), roles,
                              body.get("display_name"), active=body.get("active", user.active))
        session.flush()
        return _done(session, rt, before, allow_gaps, f"user {username} updated", user_view(session, user))


def admin_deactivate_user(rt, caller, username: str, *, allow_gaps: bool = False) -> dict:
    return admin_update_user(rt, caller, username, {"active": False}, allow_gaps=allow_gaps)


def admin_issue_token(rt, caller, username: str, *, revoke_others: bool = False) -> dict:
    """A new bearer token for an active user, returned once (only its hash is kept)."""
    require_admin(caller)
    with rt.db.write() as session:
        user = _find_user(session, username)
        if not user.active:
            raise Conflict(f"user {username} is inactive: activate them before issuing a token",
                           errors={"username": ["is inactive"]})
        return {"username": user.username, "token": issue_token_for(session, user, revoke_others=revoke_others)}
