"""Loading and checking an organisation: `flask org import`, `flask org check`, `flask seed demo`.

An organisation file is TOML with `[[units]]` and/or `[[users]]` tables, the
shapes of `processes/organisation.toml` and `processes/demo_users.toml`:

    [[units]]                     [[users]]
    code = "XL-XLJD"              username = "xljd_leader"
    name = "西陵街道办事处"         name = "郑华"              # display name (optional)
    kind = "street"               unit = "XL-XLJD"
    parent = "XL"                 roles = ["leader"]
    active = true   # optional    active = true             # optional

Importing is idempotent. A section present in the files is the complete list:
units or users of the database missing from it are deactivated (never
deleted); a section absent from every file leaves that part as it is. A
directory stands for its `organisation.toml` and `demo_users.toml`. Every
load runs `check_organisation` on the result and refuses (rolls back) when it
finds gaps, unless told to allow them, when each gap is logged as a warning.
"""
from __future__ import annotations

import logging
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from engine.core.definitions import read_sources, task_metas
from engine.errors import DefinitionNotFound, InvalidInput, OrganisationGaps, UnitInUse
from engine.rules.organisation import KINDS, Member, Organisation, OrgReport, check_organisation
from engine.rules.organisation import Unit as UnitRule
from engine.rules.status import CaseStatus, TaskRowState
from engine.services.org import upsert_user
from engine.services.org_cache import bump_org_version, lock_org, org_changed, org_from_session
from engine.store.models import Case, CaseTask
from engine.store.org_models import AppUser, Unit, UserRole

log = logging.getLogger(__name__)
UNIT_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,49}$")
DIRECTORY_FILES = ("organisation.toml", "demo_users.toml")


@dataclass
class OrgFile:
    units: list[dict] | None = None
    users: list[dict] | None = None
    sources: list[str] = field(default_factory=list)


# -- reading files ----------------------------------------------------------------------


def unit_field_errors(row: dict, *, partial: bool = False) -> dict[str, list[str]]:
    """What is wrong with a unit's fields (code, name, kind, parent, active); {} when nothing."""
    errors: dict[str, list[str]] = {}
    required = () if partial else ("code", "name", "kind")
    for key in required:
        if key not in row:
            errors[key] = ["is required"]
    if "code" in row and not (isinstance(row["code"], str) and UNIT_CODE.match(row["code"])):
        errors["code"] = ["must be 1-50 letters, digits or _.- and start with a letter or digit"]
    if "name" in row and not (isinstance(row["name"], str) and 0 < len(row["name"].strip()) <= 200):
        errors["name"] = ["must be 1-200 characters"]
    if "kind" in row and row["kind"] not in KINDS:
        errors["kind"] = [f"unknown kind {row['kind']!r}: use one of {', '.join(KINDS)}"]
    if row.get("parent") is not None and not isinstance(row["parent"], str):
        errors["parent"] = ["must be a unit code"]
    if "active" in row and not isinstance(row["active"], bool):
        errors["active"] = ["must be true or false"]
    return errors


def _user_row_errors(row: dict) -> dict[str, list[str]]:
    errors = {k: ["is required"] for k in ("username", "unit", "roles") if k not in row}
    if "roles" in row and not (isinstance(row["roles"], list) and all(isinstance(r, str) for r in row["roles"])):
        errors["roles"] = ["must be a list of role names"]
    if "active" in row and not isinstance(row["active"], bool):
        errors["active"] = ["must be true or false"]
    return errors


def _files(paths) -> list[Path]:
    out = []
    for path in map(Path, paths):
        if path.is_dir():
            found = [path / name for name in DIRECTORY_FILES if (path / name).exists()]
            if not found:
                raise InvalidInput(f"{path}: holds neither {' nor '.join(DIRECTORY_FILES)}")
            out.extend(found)
        else:
            out.append(path)
    return out


def read_org_files(paths) -> OrgFile:
    """The units and users of the files (sections merged), or InvalidInput naming file, entry and field."""
    result, errors, seen = OrgFile(), {}, {"units": {}, "users": {}}
    for path in _files(paths):
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise InvalidInput(f"{path}: {exc}") from exc
        result.sources.append(str(path))
        for section, key, check in (("units", "code", unit_field_errors), ("users", "username", _user_row_errors)):
            if section not in doc:
                continue
            rows = doc[section]
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                errors[f"{path.name}: {section}"] = [f"must be an array of tables ([[{section}]])"]
                continue
            for i, row in enumerate(rows):
                where = f"{path.name}: {section}[{i}]"
                for name, messages in check(row).items():
                    errors[f"{where}.{name}"] = messages
                if row.get(key) in seen[section]:
                    errors[f"{where}.{key}"] = [f"{row[key]!r} is listed twice (first in {seen[section][row[key]]})"]
                elif isinstance(row.get(key), str):
                    seen[section][row[key]] = where
            setattr(result, section, (getattr(result, section) or []) + rows)
    if errors:
        raise InvalidInput(f"{len(errors)} problem(s) in the organisation file(s)", errors=errors)
    if result.units is None and result.users is None:
        raise InvalidInput(f"{', '.join(result.sources)}: no [[units]] and no [[users]]")
    return result


# -- applying rows ----------------------------------------------------------------------


def _counts() -> dict:
    return {"created": 0, "updated": 0, "deactivated": 0, "unchanged": 0}


def _parents_first(rows: list[dict]) -> list[dict]:
    by_code = {r["code"]: r for r in rows}
    done: dict[str, dict] = {}

    def visit(row, trail=()):
        if row["code"] in done or row["code"] in trail:
            return
        parent = by_code.get(row.get("parent"))
        if parent is not None:
            visit(parent, (*trail, row["code"]))
        done[row["code"]] = row

    for row in rows:
        visit(row)
    return list(done.values())


def check_tree(parents: dict[str, str | None]) -> dict[str, list[str]]:
    """Unknown parents and cycles in a code → parent map, by unit."""
    errors = {}
    for code, parent in parents.items():
        if parent is not None and parent not in parents:
            errors[code] = [f"unknown parent unit {parent!r}"]
    for code in parents:
        seen, at = [code], parents.get(code)
        while at is not None and at in parents and at not in seen:
            seen.append(at)
            at = parents[at]
        if at == code:
            errors[code] = [f"the units form a cycle: {' -> '.join([*seen, code])}"]
    return errors


def apply_units(session, rows: list[dict], *, deactivate_missing: bool) -> dict:
    """Upsert the units (parents first); deactivate stored ones the rows omit if asked. Returns counts."""
    stored = {u.code: u for u in session.scalars(select(Unit))}
    parents = {} if deactivate_missing else {c: u.parent for c, u in stored.items()}
    parents.update({r["code"]: r.get("parent") for r in rows})
    problems = check_tree(parents)
    if problems:
        raise InvalidInput("the units do not form a tree", errors={f"units.{c}.parent": m for c, m in problems.items()})
    counts = _counts()
    for row in _parents_first(rows):
        values = {"name": row["name"], "kind": row["kind"], "parent": row.get("parent"),
                  "active": row.get("active", True)}
        unit = stored.get(row["code"])
        if unit is None:
            session.add(Unit(code=row["code"], level=row["kind"][:20], **values))
            session.flush()
            counts["created"] += 1
        elif any(getattr(unit, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(unit, k, v)
            counts["updated"] += 1
        else:
            counts["unchanged"] += 1
    if deactivate_missing:
        listed = {r["code"] for r in rows}
        for code, unit in stored.items():
            if code not in listed and unit.active:
                unit.active = False
                counts["deactivated"] += 1
    session.flush()
    return counts


def apply_users(session, rt, rows: list[dict], *, deactivate_missing: bool) -> dict:
    counts = _counts()
    existing = set(session.scalars(select(AppUser.username)))
    for i, row in enumerate(rows):
        try:
            _, changed = upsert_user(session, rt.tables, row["username"], row["unit"], row["roles"], row.get("name"),
                                     active=row.get("active", True))
        except InvalidInput as exc:
            raise InvalidInput(f"user {row['username']!r}: {exc.message}",
                               errors={f"users[{i}].{k}": v for k, v in exc.errors.items()}) from exc
        counts["created" if row["username"] not in existing else "updated" if changed else "unchanged"] += 1
    if deactivate_missing:
        listed = {r["username"] for r in rows}
        for user in session.scalars(select(AppUser).where(AppUser.active.is_(True))):
            if user.username not in listed:
                user.active = False
                counts["deactivated"] += 1
    session.flush()
    return counts


def refresh_levels(session) -> None:
    """Recompute each unit's stored level from the tree (a moved parent moves its whole subtree)."""
    org = org_from_session(session)
    for unit in session.scalars(select(Unit)):
        level = (org.level_of(unit.code) or unit.kind)[:20]
        if unit.level != level:
            unit.level = level


def active_units(session) -> set[str]:
    return set(session.scalars(select(Unit.code).where(Unit.active.is_(True))))


def in_use(session, was_active: set[str]) -> dict[str, list[str]]:
    """What still depends on the units this change deactivated: open tasks, open cases routed there, active
    users, active units under them. (A unit created inactive may be staffed before it opens.)"""
    inactive = was_active - active_units(session)
    if not inactive:
        return {}
    out: dict[str, list[str]] = {}
    for case_no, bpmn_id, task_id, unit in session.execute(
            select(Case.case_no, CaseTask.bpmn_id, CaseTask.id, CaseTask.unit_code)
            .join(Case, Case.id == CaseTask.case_id)
            .where(CaseTask.state == TaskRowState.READY.value, CaseTask.unit_code.in_(sorted(inactive)))):
        out.setdefault(unit, []).append(f"open task {bpmn_id} of case {case_no} ({task_id})")
    for case_no, unit in session.execute(select(Case.case_no, Case.routed_unit).where(
            Case.status != CaseStatus.CLOSED.value, Case.routed_unit.in_(sorted(inactive)))):
        out.setdefault(unit, []).append(f"open case {case_no} is routed to it")
    for username, unit in session.execute(select(AppUser.username, AppUser.unit_code).where(
            AppUser.active.is_(True), AppUser.unit_code.in_(sorted(inactive)))):
        out.setdefault(unit, []).append(f"active user {username}")
    for code, parent in session.execute(select(Unit.code, Unit.parent).where(
            Unit.active.is_(True), Unit.parent.in_(sorted(inactive)))):
        out.setdefault(parent, []).append(f"active unit {code} under it")
    return out


# -- checking ---------------------------------------------------------------------------


def members_from_session(session) -> list[Member]:
    roles: dict[int, set[str]] = {}
    for user_id, role in session.execute(select(UserRole.user_id, UserRole.role)):
        roles.setdefault(user_id, set()).add(role)
    return [Member(u.username, u.unit_code, frozenset(roles.get(u.id, ())), bool(u.active))
            for u in session.scalars(select(AppUser))]


def _file_procedure_lanes(rt, wanted: set[str]) -> dict[str, set[str]]:
    if not wanted:
        return {}
    parsed, _problems = rt.definitions.parse_sources(read_sources([rt.processes_dir]))
    return {p.process_id: {m.lane for m in task_metas(p.spec, p.subprocess_specs).values() if m.lane}
            for p in parsed if p.process_id in wanted}


def procedure_lanes(rt, session=None) -> dict[str, set[str]]:
    """Process id → the lanes of its user tasks: the newest deployed version, else the file in processes/."""
    wanted = {route.process for route in rt.tables.routes.values()}
    out = {}
    if session is not None:
        for pid in sorted(wanted):
            try:
                out[pid] = {m.lane for m in rt.definitions.latest(session, pid).tasks.values() if m.lane}
            except DefinitionNotFound:
                pass
    out.update(_file_procedure_lanes(rt, wanted - set(out)))
    return out


def org_report(session, rt, org: Organisation | None = None, members: list[Member] | None = None) -> OrgReport:
    org = org if org is not None else org_from_session(session)
    members = members if members is not None else members_from_session(session)
    return check_organisation(org, members, rt.tables, procedure_lanes(rt, session))


def report_view(report: OrgReport) -> dict:
    return {"ok": report.ok, "summary": report.summary(), "notes": report.notes,
            "gaps": [dict(g.to_dict(), text=g.describe()) for g in report.gaps]}


def check_loaded(rt) -> dict:
    """`flask org check`: the organisation the engine runs on now (the database's, else organisation.toml)."""
    with rt.db.read() as session:
        org = org_from_session(session, rt.tables.file_org)
        return report_view(org_report(session, rt, org))


def check_files(rt, paths) -> dict:
    """`flask org check FILE`: the organisation the files describe; without [[users]], the database's users."""
    data = read_org_files(paths)
    org = None
    if data.units is not None:
        problems = check_tree({r["code"]: r.get("parent") for r in data.units})
        if problems:
            raise InvalidInput("the units do not form a tree",
                               errors={f"units.{c}.parent": m for c, m in problems.items()})
        org = Organisation(UnitRule(r["code"], r["name"], r["kind"], r.get("parent"), r.get("active", True))
                           for r in data.units)
    members = None
    if data.users is not None:
        members = [Member(r["username"], r["unit"], frozenset(r["roles"]), r.get("active", True)) for r in data.users]
    if org is not None and members is not None:
        return report_view(check_organisation(org, members, rt.tables, procedure_lanes(rt)))
    with rt.db.read() as session:
        return report_view(org_report(session, rt, org or org_from_session(session, rt.tables.file_org), members))


# -- loading ----------------------------------------------------------------------------


def gate(report: OrgReport, *, allow_gaps: bool, what: str, before: set | None = None) -> list[str]:
    """Refuse a change whose organisation has gaps (only new ones, given `before`); or log them loudly."""
    gaps = [g for g in report.gaps if before is None or g not in before]
    texts = [g.describe() for g in gaps]
    if texts and not allow_gaps:
        raise OrganisationGaps(f"{what}: refused, {len(texts)} gap(s) would leave tasks with no unit or no "
                               f"candidate", texts)
    for text in texts:
        log.warning("organisation gap allowed (%s): %s", what, text)
    return texts


@dataclass
class Before:
    """The organisation before a change: its gaps (only new ones are refused) and its active units."""

    gaps: set | None
    active: set[str]


def ensure_units(session, rt) -> Before:
    """Lock the organisation for a change; load organisation.toml first if the database has no unit yet."""
    lock_org(session)
    if session.scalar(select(Unit.code).limit(1)) is None:
        rows = [{"code": u.code, "name": u.name, "kind": u.kind, "parent": u.parent, "active": u.active}
                for u in rt.tables.file_org.units.values()]
        apply_units(session, rows, deactivate_missing=False)
        refresh_levels(session)
    return Before(set(org_report(session, rt).gaps), active_units(session))


def begin_load(session) -> Before:
    """Lock the organisation for a load that must leave no gap at all."""
    lock_org(session)
    return Before(None, active_units(session))


def finish_change(session, rt, before: Before, *, allow_gaps: bool, what: str) -> dict:
    """After units or users changed: levels, nothing left on deactivated units, the check, the version stamp."""
    session.flush()
    refresh_levels(session)
    busy = in_use(session, before.active)
    if busy:
        raise UnitInUse(f"{what}: refused, inactive unit(s) still in use: {', '.join(sorted(busy))}",
                        errors={f"units.{code}": items for code, items in sorted(busy.items())})
    report = org_report(session, rt)
    allowed = gate(report, allow_gaps=allow_gaps, what=what, before=before.gaps)
    bump_org_version(session)
    return dict(report_view(report), allowed_gaps=allowed)


def import_organisation(rt, paths, *, allow_gaps: bool = False) -> dict:
    """`flask org import`: make the database's units and users those of the files; counts and the check."""
    data = read_org_files(paths)
    with rt.db.write() as session:
        before = begin_load(session)
        units = apply_units(session, data.units, deactivate_missing=True) if data.units is not None else _counts()
        users = apply_users(session, rt, data.users, deactivate_missing=True) if data.users is not None \
            else _counts()
        result = finish_change(session, rt, before, allow_gaps=allow_gaps, what="organisation import")
    org_changed(rt)
    return {"sources": data.sources, "units": units, "users": users, "check": result}


def seed_units(session, rt) -> tuple[Before, int]:
    """The demo's units (processes/organisation.toml), upserted; none deactivated. How many changed."""
    before = begin_load(session)
    data = read_org_files([rt.processes_dir / "organisation.toml"])
    counts = apply_units(session, data.units or [], deactivate_missing=False)
    return before, counts["created"] + counts["updated"]
