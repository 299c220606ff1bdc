"""The data tables under `processes/`, loaded and checked once.

One place for each rule: `routing.toml` (category → responsible unit and
time-limit class), `lanes.toml` (lane → role, unit and level),
`time_limits.toml` (deadlines, rework caps), `organisation.toml` (the unit
tree the engine reads until the database holds one: see `engine.rules.organisation`) and
`grids.toml` (grid → community, `engine.rules.grids`), `screening.toml` (the
screening cycles, `engine.rules.screening`). Process designers edit these files;
nothing else hard-codes them.
`lanes.toml` also says, under [roles], which role may act for another in its
unit (the work centre for its handlers) and which roles may delegate.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from engine.rules.calendar import load_time_limits
from engine.rules.grids import GridTable, load_grids
from engine.rules.screening import ScreeningSchedule, load_screening
from engine.rules.organisation import DATA_SOURCE, LEVEL_KINDS, LEVEL_UNITS, Organisation, Unit, is_mediation_kind  # noqa: F401

UNIT_SOURCES = ("community", "routed_unit", "supervision_centre", "routing_desk", "street", "district_coordination",
                "city_coordination", "joint_meeting")


@dataclass(frozen=True)
class Route:
    category: str
    name: str
    unit: str
    time_limit_class: str
    process: str
    mediation: str | None = None  # the kind of mediation body the case is docked with first (调解对接)


@dataclass(frozen=True)
class LaneRule:
    lane: str
    role: str
    unit_from: str
    level: str
    assisting: bool = False  # a co-handler's lane: its tasks never become the case's status or current unit


@dataclass(frozen=True)
class RoleRule:
    role: str
    acts_for: tuple[str, ...] = ()
    may_delegate: bool = False


@dataclass
class Tables:
    """The process data tables, and the organisation snapshot the engine currently reads.

    `org` starts as `organisation.toml`'s tree; once the database holds an
    organisation, the services swap in its snapshot whenever its version stamp
    moves (`engine.services.org_cache`), so every worker sees a change at once.
    """

    routes: dict[str, Route]
    lanes: dict[str, LaneRule]
    fixed_units: dict[str, str]
    time_limits: dict
    org: Organisation = field(default_factory=Organisation)
    roles: dict[str, RoleRule] = field(default_factory=dict)
    grids: GridTable = field(default_factory=lambda: GridTable((), None))
    file_org: Organisation = field(default_factory=Organisation)
    screening: ScreeningSchedule = field(default_factory=lambda: load_screening(Path("/nonexistent")))

    @property
    def units(self) -> dict[str, Unit]:
        return self.org.units

    def route(self, category: str) -> Route:
        return self.routes[category]

    def holders_of(self, role: str) -> set[str]:
        """The roles whose users may hold a task of `role`: itself and every role that acts for it."""
        return {role} | {name for name, rule in self.roles.items() if role in rule.acts_for}

    def level_of(self, unit_code: str) -> str | None:
        return self.org.level_of(unit_code)

    def descendants(self, unit_code: str) -> set[str]:
        return self.org.descendants(unit_code)

    def ancestor_of(self, unit_code: str, kind: str) -> Unit | None:
        return self.org.ancestor_of(unit_code, kind)

    def street_of(self, unit_code: str) -> str | None:
        return self.org.street_of(unit_code)

    def level_unit(self, level: str, community: str) -> str | None:
        return self.org.level_unit(level, community)

    def unit_for(self, rule: LaneRule | None, community: str, routed_unit: str | None,
                 data: dict | None = None) -> str | None:
        """The unit whose users are the candidates of a task in `rule`'s lane, for this case.

        `data`: the task's data, for a lane whose unit the data names (`data:<name>`).
        """
        if rule is None:
            return None
        if rule.unit_from.startswith(DATA_SOURCE):
            value = (data or {}).get(rule.unit_from[len(DATA_SOURCE):])
            return value if isinstance(value, str) and value else None
        if rule.unit_from == "community":
            return community
        if rule.unit_from == "routed_unit":
            return routed_unit
        if rule.unit_from in LEVEL_UNITS:
            return self.org.level_unit(rule.unit_from, community)
        if rule.unit_from == "routing_desk":  # who re-routes refused cases: the supervision centre unless configured
            return self.fixed_units.get("routing_desk") or self.fixed_units.get("supervision_centre")
        return self.fixed_units.get(rule.unit_from)

    def unit_gap(self, rule: LaneRule | None, community: str, routed_unit: str | None,
                 data: dict | None = None) -> str | None:
        """Why a task in `rule`'s lane has no unit for this case (None when it has one)."""
        if rule is None:
            return "its lane is not in lanes.toml"
        unit = self.unit_for(rule, community, routed_unit, data)
        if unit is not None:
            return None if not self.units or unit in self.units else f"{rule.unit_from}: unit {unit} is not in " \
                                                                      "the organisation"
        if rule.unit_from.startswith(DATA_SOURCE):
            return f"{rule.unit_from}: the case data names no unit"
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
            units[row["code"]] = Unit(row["code"], row["name"], row["kind"], row.get("parent"),
                                      bool(row.get("active", True)))

    lanes_doc = _read(processes_dir / "lanes.toml")
    lanes = {}
    for name, rule in lanes_doc.get("lanes", {}).items():
        source = rule.get("unit_from")
        if source not in UNIT_SOURCES and not (isinstance(source, str) and source.startswith(DATA_SOURCE)
                                               and source[len(DATA_SOURCE):].isidentifier()):
            raise ValueError(f"lanes.toml: lane {name!r}: unit_from must be one of {', '.join(UNIT_SOURCES)} "
                             "or data:<variable>")
        lanes[name] = LaneRule(name, rule["role"], rule["unit_from"], rule.get("level", "community"),
                               bool(rule.get("assisting", False)))
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
        mediation = row.get("mediation")
        if mediation is not None and not is_mediation_kind(mediation):
            raise ValueError(f"routing.toml: category {category!r}: mediation {mediation!r} is not a mediation "
                             "body kind (a kind ending in _mediation)")
        routes[category] = Route(category, row["name"], row["unit"], row["time_limit_class"], row["process"],
                                 mediation)
    org = Organisation(units.values())
    return Tables(routes=routes, lanes=lanes, fixed_units=fixed_units, time_limits=time_limits, org=org,
                  roles=roles, file_org=org, grids=load_grids(processes_dir, units),
                  screening=load_screening(processes_dir))
