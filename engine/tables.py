"""The data tables under `processes/`, loaded and checked once.

One place for each rule: `routing.toml` (category → responsible unit and
time-limit class), `lanes.toml` (lane → role, unit and level),
`time_limits.toml` (deadlines, rework caps) and `organisation.toml` (the unit
tree). Process designers edit these files; nothing else hard-codes them.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from engine.calendar import load_time_limits

UNIT_SOURCES = ("community", "routed_unit", "supervision_centre")


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


@dataclass
class Tables:
    routes: dict[str, Route]
    lanes: dict[str, LaneRule]
    fixed_units: dict[str, str]
    time_limits: dict
    units: dict[str, Unit] = field(default_factory=dict)

    def route(self, category: str) -> Route:
        return self.routes[category]

    def street_of(self, unit_code: str) -> str | None:
        unit = self.units.get(unit_code)
        while unit is not None and unit.kind != "street":
            unit = self.units.get(unit.parent) if unit.parent else None
        return unit.code if unit else None


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
    return Tables(routes=routes, lanes=lanes, fixed_units=fixed_units, time_limits=time_limits, units=units)
