"""The organisation as the engine reads it, and the check that it can carry every case.

`Organisation` is an immutable snapshot of the unit tree: the walks that decide
scope (a unit's level, the units below it) and which unit acts at each
coordination level for a community's case. Only active units act; deactivated
ones stay in the tree so old cases still name them.

The ladder (分层化解) is street office → district coordination office → city
coordination office → city leaders' joint meeting. A level the tree lacks for
a community (a district without a coordination office, a community directly
under its district, a deactivated street office) is taken by the next level
up that exists: the district's coordination step of a community in a district
without a coordination office goes to the city's coordination office. So a
task never falls to no unit while any level above exists; the check reports
each such fallback as a note and a missing top as a gap.

`check_organisation` is the one rule behind `flask org check`, `flask org
import`, `flask seed demo` and the administrators' API: every community
reaches an active unit with candidates at every ladder level its procedures
use, and every routed category has an active unit with candidates (active
users holding the lane's role, or a role acting for it) for each lane role its
procedure uses.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

# intake_desk: a first-contact desk (the 12345 hotline's) that accepts what cannot be placed in a community.
KINDS = ("city", "district", "street", "community", "city_department", "district_department",
         "coordination_office", "joint_meeting", "supervision_centre", "intake_desk",
         # Mediation bodies (调解组织): the kinds end in `_mediation`. 人民调解委员会, 驻所调解室 (police
         # station), 诉调对接室 (court), 检调对接室 (procuratorate), 医调委 (medical disputes),
         # 交通事故联动调解中心 (the traffic four-in-one centre), 劳动争议调解委员会 (labour disputes).
         "people_mediation", "police_mediation", "court_mediation", "procuratorate_mediation",
         "medical_mediation", "traffic_mediation", "labour_mediation")
MEDIATION_SUFFIX = "_mediation"


def is_mediation_kind(kind: str | None) -> bool:
    """A mediation body's kind: it ends in `_mediation` (the contract later checks rely on)."""
    return bool(kind) and kind.endswith(MEDIATION_SUFFIX)
# The kinds that are levels of the tree themselves; any other unit takes the level of its parent.
LEVEL_KINDS = ("city", "district", "street", "community")
# Coordination levels above a community, found in the unit tree: (ancestor kind, unit kind under it).
LEVEL_UNITS = {
    "street": ("street", None),
    "district_coordination": ("district", "coordination_office"),
    "city_coordination": ("city", "coordination_office"),
    "joint_meeting": ("city", "joint_meeting"),
}
LADDER = ("street", "district_coordination", "city_coordination", "joint_meeting")
# A lane whose `unit_from` is "data:<name>" takes its unit from the task data variable <name>.
DATA_SOURCE = "data:"


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    kind: str
    parent: str | None
    active: bool = True


class Organisation:
    """The unit tree at one version: lookups and the walks the rules need."""

    def __init__(self, units: Iterable[Unit] = (), version: int | None = None):
        self.units: dict[str, Unit] = {u.code: u for u in units}
        self.version = version
        self._children: dict[str, list[str]] = {}
        for u in self.units.values():
            if u.parent:
                self._children.setdefault(u.parent, []).append(u.code)

    def is_active(self, code: str | None) -> bool:
        unit = self.units.get(code) if code else None
        return unit is not None and unit.active

    def mediation_bodies(self, kind: str | None = None) -> list[str]:
        """The active mediation bodies (of one kind, if given), by code."""
        return sorted(c for c, u in self.units.items() if u.active and is_mediation_kind(u.kind)
                      and (kind is None or u.kind == kind))

    def nearest_of_kind(self, unit_code: str, kind: str) -> str | None:
        """The active unit of `kind` closest above `unit_code`: itself, a sibling under the nearest ancestor, ..."""
        for unit in self._up(unit_code):
            if unit.kind == kind and unit.active:
                return unit.code
            found = sorted(c for c in self._children.get(unit.code, ())
                           if self.units[c].kind == kind and self.units[c].active)
            if found:
                return found[0]
        return None

    def communities(self) -> list[str]:
        """The active communities, where cases are registered."""
        return sorted(c for c, u in self.units.items() if u.kind == "community" and u.active)

    def _up(self, unit_code: str | None):
        unit, seen = self.units.get(unit_code) if unit_code else None, set()
        while unit is not None and unit.code not in seen:
            yield unit
            seen.add(unit.code)
            unit = self.units.get(unit.parent) if unit.parent else None

    def level_of(self, unit_code: str) -> str | None:
        """city, district, street or community: the nearest unit of a level kind, upwards."""
        return next((u.kind for u in self._up(unit_code) if u.kind in LEVEL_KINDS), None)

    def descendants(self, unit_code: str) -> set[str]:
        """The codes of every unit below `unit_code` in the tree (not itself)."""
        out, todo = set(), list(self._children.get(unit_code, ()))
        while todo:
            code = todo.pop()
            if code not in out:
                out.add(code)
                todo.extend(self._children.get(code, ()))
        return out

    def ancestor_of(self, unit_code: str, kind: str) -> Unit | None:
        """The unit itself or its nearest ancestor of this kind (active or not)."""
        return next((u for u in self._up(unit_code) if u.kind == kind), None)

    def street_of(self, unit_code: str) -> str | None:
        """The active street office above a community (None if there is none)."""
        unit = self.ancestor_of(unit_code, "street")
        return unit.code if unit is not None and unit.active else None

    def own_level_unit(self, level: str, community: str) -> str | None:
        """The active unit acting at exactly this coordination level for a community, no fallback."""
        ancestor_kind, child_kind = LEVEL_UNITS[level]
        ancestor = self.ancestor_of(community, ancestor_kind)
        if ancestor is None or not ancestor.active:
            return None
        if child_kind is None:
            return ancestor.code
        return next((c for c in sorted(self._children.get(ancestor.code, ()))
                     if self.units[c].kind == child_kind and self.units[c].active), None)

    def level_unit(self, level: str, community: str) -> str | None:
        """The unit acting at a coordination level for a community: its own, else the next level up that exists."""
        for step in LADDER[LADDER.index(level):]:
            unit = self.own_level_unit(step, community)
            if unit is not None:
                return unit
        return None


# -- the check ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """A user as the check sees them: unit, roles and whether they may work."""

    username: str
    unit: str
    roles: frozenset[str]
    active: bool = True


@dataclass(frozen=True, order=True)
class Gap:
    """One place where a task would have no unit or no candidate."""

    lane: str
    role: str
    unit: str | None
    reason: str
    category: str | None = None
    community: str | None = None
    level: str | None = None

    def describe(self) -> str:
        where = ", ".join(f"{k} {v}" for k, v in (("category", self.category), ("community", self.community),
                                                   ("level", self.level)) if v)
        return f"{where or 'organisation'}: lane {self.lane} (role {self.role}) -> {self.unit or 'no unit'}: " \
               f"{self.reason}"

    def to_dict(self) -> dict:
        return {"category": self.category, "community": self.community, "level": self.level, "lane": self.lane,
                "role": self.role, "unit": self.unit, "reason": self.reason}


@dataclass
class OrgReport:
    gaps: list[Gap] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    units: int = 0
    active_units: int = 0
    communities: int = 0
    categories: int = 0
    users: int = 0

    @property
    def ok(self) -> bool:
        return not self.gaps

    def summary(self) -> str:
        return (f"{self.active_units} active units ({self.units} in all), {self.communities} communities, "
                f"{self.categories} routed categories, {self.users} active users: "
                + ("every task has a unit with candidates" if self.ok else f"{len(self.gaps)} gap(s)"))


def task_roles(role_rules: dict, roles: Iterable[str]) -> set[str]:
    """The task roles a holder of `roles` may work on in their unit: theirs and those they act for."""
    out = set(roles)
    for role in roles:
        rule = role_rules.get(role)
        if rule is not None:
            out.update(rule.acts_for)
    return out


def staffed(org: Organisation, members: Iterable[Member], role_rules: dict) -> set[tuple[str, str]]:
    """(unit, task role) pairs some active user of an active unit may work on (acts_for included)."""
    return {(m.unit, role) for m in members if m.active and org.is_active(m.unit)
            for role in task_roles(role_rules, m.roles)}


class _Checker:
    def __init__(self, org: Organisation, members: list[Member], tables):
        self.org, self.tables = org, tables
        self.staffed = staffed(org, members, tables.roles)
        self.gaps: set[Gap] = set()
        self.fallbacks: dict[tuple[str, str], list[str]] = {}

    def need(self, unit: str | None, rule, missing: str, **where) -> None:
        if unit is None:
            reason = missing
        elif unit not in self.org.units:
            reason = f"unit {unit} does not exist"
        elif not self.org.is_active(unit):
            reason = f"unit {unit} is inactive"
        elif (unit, rule.role) not in self.staffed:
            reason = f"no active user of {unit} holds role {rule.role}"
        else:
            return
        self.gaps.add(Gap(lane=rule.lane, role=rule.role, unit=unit, reason=reason, **where))

    def lane(self, rule, communities: list[str]) -> None:
        if rule.unit_from == "community":
            for c in communities:
                self.need(c, rule, "no community", community=c)
        elif rule.unit_from in LEVEL_UNITS:
            for c in communities:
                unit = self.org.level_unit(rule.unit_from, c)
                if unit is not None and unit != self.org.own_level_unit(rule.unit_from, c):
                    self.fallbacks.setdefault((rule.unit_from, unit), []).append(c)
                self.need(unit, rule, "no unit at this level or any level above", community=c, level=rule.unit_from)
        elif rule.unit_from.startswith(DATA_SOURCE):
            pass  # the case data names the unit (a mediation body, an opinion unit): checked when it is named
        elif rule.unit_from != "routed_unit":
            unit = self.tables.fixed_units.get(rule.unit_from)
            self.need(unit, rule, f"lanes.toml [units] names no {rule.unit_from}", level=rule.level)

    def category(self, category: str, route, lanes: set[str], communities: list[str]) -> None:
        for name in sorted(lanes):
            rule = self.tables.lanes.get(name)
            if rule is None or rule.unit_from != "routed_unit":
                continue
            if route.unit == "@street":
                for c in communities:
                    self.need(self.org.street_of(c), rule, "no active street office above the community",
                              category=category, community=c)
            else:
                self.need(route.unit, rule, "no unit", category=category)


def check_organisation(org: Organisation, members: Iterable[Member], tables,
                       procedure_lanes: dict[str, set[str]]) -> OrgReport:
    """Every gap that would leave a task with no unit or no candidate; `procedure_lanes`: process id → lanes."""
    members = list(members)
    checker = _Checker(org, members, tables)
    communities = org.communities()
    if not communities:
        checker.gaps.add(Gap(lane="-", role="-", unit=None, reason="no active community: no case can be registered"))
    used = {route.process for route in tables.routes.values()}
    for name in sorted(set().union(*(procedure_lanes.get(p, set()) for p in used))):
        rule = tables.lanes.get(name)
        if rule is None:
            checker.gaps.add(Gap(lane=name, role="-", unit=None, reason="the lane maps to no role in lanes.toml"))
        else:
            checker.lane(rule, communities)
    for category, route in sorted(tables.routes.items()):
        if route.process not in procedure_lanes:
            checker.gaps.add(Gap(lane="-", role="-", unit=None, category=category,
                                 reason=f"procedure {route.process!r} is neither deployed nor in the processes "
                                        f"directory"))
            continue
        checker.category(category, route, procedure_lanes[route.process], communities)
    notes = [f"level {level}: {len(cs)} communit{'y' if len(cs) == 1 else 'ies'} ({', '.join(sorted(cs))}) have no "
             f"unit of their own at this level; {unit}, the next level up, acts for them"
             for (level, unit), cs in sorted(checker.fallbacks.items())]
    return OrgReport(gaps=sorted(checker.gaps, key=lambda g: (g.category or "", g.community or "", g.level or "",
                                                               g.lane, g.role, g.reason)),
                     notes=notes, units=len(org.units), active_units=sum(u.active for u in org.units.values()),
                     communities=len(communities), categories=len(tables.routes),
                     users=sum(1 for m in members if m.active))
