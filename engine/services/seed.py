"""The demo organisation: the units of `organisation.toml` and the users of `demo_users.toml`.

`seed_demo` is idempotent: a second run changes nothing. The organisation it
loads must pass `flask org check` (`engine.services.org_load`), or nothing is loaded. Tokens are issued
only to the users it creates, or to every demo user when asked to rotate
(their previous tokens are then revoked), since a stored hash cannot be shown
again. Tokens the caller still holds (`keep_tokens`, e.g. read back from
`instance/demo_tokens.tsv`) are handed back unchanged while they are valid,
so a restarted demo keeps its tokens; a user without a valid one gets a new one.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

from sqlalchemy import select

from engine.errors import InvalidInput
from engine.services.org import hash_token, issue_token_for, upsert_user
from engine.services.org_cache import org_changed
from engine.services.org_load import finish_change, seed_units
from engine.store.org_models import ApiToken, AppUser

DEMO_USERS_FILE = "demo_users.toml"


def read_demo_users(path: Path) -> list[dict]:
    try:
        with open(path, "rb") as fh:
            rows = tomllib.load(fh).get("users", [])
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"{path}: {exc}") from exc
    for i, row in enumerate(rows):
        missing = [k for k in ("username", "unit", "roles") if k not in row]
        if missing:
            raise InvalidInput(f"{path.name}: user #{i + 1} lacks {', '.join(missing)}")
    return rows


def _still_valid(session, user: AppUser, token: str | None) -> bool:
    return bool(token) and session.scalar(select(ApiToken.id).where(
        ApiToken.token_hash == hash_token(token), ApiToken.user_id == user.id,
        ApiToken.revoked.is_(False))) is not None


def seed_demo(rt, path: Path | None = None, *, rotate_tokens: bool = False,
              keep_tokens: dict[str, str] | None = None, allow_gaps: bool = False) -> dict:
    """Upsert the demo units and users; returns what changed and the tokens issued (once).

    The organisation check runs on the result: gaps refuse the load unless `allow_gaps`."""
    path = Path(path) if path else rt.processes_dir / DEMO_USERS_FILE
    rows = read_demo_users(path)
    results = []
    with rt.db.write() as session:
        before, units_changed = seed_units(session, rt)
        for row in rows:
            existed = session.scalar(select(AppUser.id).where(AppUser.username == row["username"])) is not None
            try:
                user, changed = upsert_user(session, rt.tables, row["username"], row["unit"], row["roles"],
                                            row.get("name"))
            except InvalidInput as exc:
                raise InvalidInput(f"{path.name}: user {row['username']!r}: {exc.message}", errors=exc.errors) \
                    from exc
            kept = (keep_tokens or {}).get(user.username)
            if not rotate_tokens and existed and keep_tokens is not None and _still_valid(session, user, kept):
                token = kept
            elif rotate_tokens or not existed or keep_tokens is not None:
                token = issue_token_for(session, user, revoke_others=rotate_tokens)
            else:
                token = None
            results.append({"username": user.username, "unit": row["unit"], "roles": sorted(row["roles"]),
                            "created": not existed, "updated": existed and changed, "token": token})
        check = finish_change(session, rt, before, allow_gaps=allow_gaps, what="demo organisation")
    org_changed(rt)
    return {"units_changed": units_changed, "users": results, "check": check}
