"""The data tables under `processes/`, loaded and checked once.

One place for each rule: `routing.toml` (category → responsible unit and
time-limit class), `lanes.toml` (lane → role, unit and level),
`time_limits.toml` (deadlines, rework caps) and `organisation.toml` (the unit
tree). Process designers edit these files; nothing else hard-codes them.
`lanes.toml` also says, under [roles], which role may act for another in its
unit (the work centre for its handlers) and which roles may delegate.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from engine.rules.calendar import load_time_limits

UNIT_SOURCES = ("community", "routed_unit", "supervision_centre", "street", "district_coordination",
                "city_coordination", "joint_meeting")
# The kinds that are levels of the tree themselves; any other unit takes the level of its parent.
LEVEL_KINDS = ("city", "district", "street", "community")
# Coordination levels above a community, found in the unit tree: (ancestor kind, unit kind under it).
LEVEL_UNITS = {
    "street": ("street", None),
    "district_coordination": ("district", "coordination_office"),
    "city_coordination": ("city", "coordination_office"),
    "joint_meeting": ("city", "joint_meeting"),
}


@dataclass(frozen=True)
class Route:
    category: str
    name: str
    unit: str
    time_limit_class: str
    process: str


@dataclass(frozen=True)
class LaneRule:
    lane: str
    role: str
    unit_from: str
    level: str


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    kind: str
    parent: str | None


@dataclass(frozen=True)
class RoleRule:
    role: str
    acts_for: tuple[str, ...] = ()
    may_delegate: bool = False


@dataclass
class Tables:
    routes: dict[str, Route]
    lanes: dict[str, LaneRule]
    fixed_units: dict[str, str]
    time_limits: dict
    units: dict[str, Unit] = field(default_factory=dict)
    roles: dict[str, RoleRule] = field(default_factory=dict)

    def route(self, category: str) -> Route:
        return self.routes[category]

    def level_of(self, unit_code: str) -> str | None:
        """city, district, street or community: the nearest unit of a level kind, upwards."""
        unit, seen = self.units.get(unit_code), set()
        while unit is not None and unit.code not in seen:
            if unit.kind in LEVEL_KINDS:
                return unit.kind
            seen.add(unit.code)
            unit = self.units.get(unit.parent) if unit.parent else None
        return None

    def descendants(self, unit_code: str) -> set[str]:
        """The codes of every unit below `unit_code` in the tree (not itself)."""
        children: dict[str, list[str]] = {}
        for u in self.units.values():
            if u.parent:
                children.setdefault(u.parent, []).append(u.code)
        out, todo = set(), list(children.get(unit_code, ()))
        while todo:
            code = todo.pop()
            if code not in out:
                out.add(code)
                todo.extend(children.get(code, ()))
        return out

    def ancestor_of(self, unit_code: str, kind: str) -> Unit | None:
        unit = self.units.get(unit_code)
        while unit is not None and unit.kind != kind:
            unit = self.units.get(unit.parent) if unit.parent else None
        return unit

    def street_of(self, unit_code: str) -> str | None:
        unit = self.ancestor_of(unit_code, "street")
        return unit.code if unit else None

    def unit_for(self, rule: LaneRule | None, community: str, routed_unit: str | None) -> str | None:
        """The unit whose users are the candidates of a task in `rule`'s lane, for this case."""
        if rule is None:
            return None
        if rule.unit_from == "community":
            return community
        if rule.unit_from == "routed_unit":
            return routed_unit
        if rule.unit_from in LEVEL_UNITS:
            return self.level_unit(rule.unit_from, community)
        return self.fixed_units.get(rule.unit_from)

    def level_unit(self, level: str, community: str) -> str | None:
        """The unit that acts at a coordination level for a community's case (None if the tree lacks it)."""
        ancestor_kind, child_kind = LEVEL_UNITS[level]
        ancestor = self.ancestor_of(community, ancestor_kind)
        if ancestor is None or child_kind is None:
            return ancestor.code if ancestor else None
        for unit in self.units.values():
            if unit.parent == ancestor.code and unit.kind == child_kind:
                return unit.code
        return None

    def unit_gap(self, rule: LaneRule | None, community: str, routed_unit: str | None) -> str | None:
        """Why a task in `rule`'s lane has no unit for this case (None when it has one)."""
        if rule is None:
            return "its lane is not in lanes.toml"
        unit = self.unit_for(rule, community, routed_unit)
        if unit is not None:
            return None if not self.units or unit in self.units else f"{rule.unit_from}: unit {unit} is not in " \
                                                                      "the organisation"
        if rule.unit_from == "routed_unit":
            return "routed_unit: the case has not been routed to a unit"
        if rule.unit_from not in LEVEL_UNITS:
            return f"{rule.unit_from}: lanes.toml [units] names no unit for it"
        ancestor_kind, child_kind = LEVEL_UNITS[rule.unit_from]
        ancestor = self.ancestor_of(community, ancestor_kind)
        if ancestor is None:
            return f"{rule.unit_from}: community {community} has no {ancestor_kind} above it"
        return f"{rule.unit_from}: {ancestor_kind} {ancestor.code} ({ancestor.name}) has no {child_kind} under it"


def _read(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path.name}: {exc}") from exc


def load_tables(processes_dir: Path) -> Tables:
    processes_dir = Path(processes_dir)
    units = {}
    org_path = processes_dir / "organisation.toml"
    if org_path.exists():
        for row in _read(org_path).get("units", []):
            units[row["code"]] = Unit(row["code"], row["name"], row["kind"], row.get("parent"))

    lanes_doc = _read(processes_dir / "lanes.toml")
    lanes = {}
    for name, rule in lanes_doc.get("lanes", {}).items():
        if rule.get("unit_from") not in UNIT_SOURCES:
            raise ValueError(f"lanes.toml: lane {name!r}: unit_from must be one of {', '.join(UNIT_SOURCES)}")
        lanes[name] = LaneRule(name, rule["role"], rule["unit_from"], rule.get("level", "community"))
    fixed_units = dict(lanes_doc.get("units", {}))
    roles = {}
    for name, rule in lanes_doc.get("roles", {}).items():
        roles[name] = RoleRule(name, tuple(rule.get("acts_for", ())), bool(rule.get("may_delegate", False)))

    time_limits = load_time_limits(processes_dir)
    routes = {}
    for category, row in _read(processes_dir / "routing.toml").get("categories", {}).items():
        missing = [k for k in ("name", "unit", "time_limit_class", "process") if k not in row]
        if missing:
            raise ValueError(f"routing.toml: category {category!r} lacks {', '.join(missing)}")
        if row["time_limit_class"] not in time_limits["handling"]:
            raise ValueError(
                f"routing.toml: category {category!r}: unknown time_limit_class {row['time_limit_class']!r}"
            )
        if units and not row["unit"].startswith("@") and row["unit"] not in units:
            raise ValueError(f"routing.toml: category {category!r}: unknown unit {row['unit']!r}")
        routes[category] = Route(category, row["name"], row["unit"], row["time_limit_class"], row["process"])
    return Tables(routes=routes, lanes=lanes, fixed_units=fixed_units, time_limits=time_limits, units=units,
                  roles=roles)
