"""The first-contact rule (一门受理): which community accepts a case from another system.

The organisation's grid table (`processes/grids.toml`) gives each grid its
community and a bounding box. A case is placed by its grid code if the table
knows it, else by its coordinates (the first grid, in file order, whose box
holds the point), else at the configured default desk. The result says how it
was placed, so the intake answer and the case source can show it.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

GRIDS_FILE = "grids.toml"


@dataclass(frozen=True)
class Grid:
    code: str
    community: str
    bbox: tuple[float, float, float, float]  # min_lon, min_lat, max_lon, max_lat

    def holds(self, lat: float, lon: float) -> bool:
        min_lon, min_lat, max_lon, max_lat = self.bbox
        return min_lon <= lon <= max_lon and min_lat <= lat <= max_lat


@dataclass(frozen=True)
class Placement:
    community: str
    grid: str | None
    by: str  # "grid", "coordinates" or "default_desk"


@dataclass(frozen=True)
class GridTable:
    grids: tuple[Grid, ...]
    default_desk: str | None

    def place(self, grid: str | None = None, lat: float | None = None, lon: float | None = None) -> Placement | None:
        """Grid code → community, else coordinates → grid → community, else the default desk (None if unset)."""
        for g in self.grids:
            if grid and g.code == grid:
                return Placement(g.community, g.code, "grid")
        if lat is not None and lon is not None:
            for g in self.grids:
                if g.holds(lat, lon):
                    return Placement(g.community, g.code, "coordinates")
        if self.default_desk is None:
            return None
        return Placement(self.default_desk, grid, "default_desk")


def _bbox(code: str, value) -> tuple[float, float, float, float]:
    if not (isinstance(value, list) and len(value) == 4 and all(isinstance(v, (int, float)) for v in value)):
        raise ValueError(f"{GRIDS_FILE}: grid {code!r}: bbox must be [min_lon, min_lat, max_lon, max_lat]")
    min_lon, min_lat, max_lon, max_lat = (float(v) for v in value)
    if not (-180 <= min_lon < max_lon <= 180 and -90 <= min_lat < max_lat <= 90):
        raise ValueError(f"{GRIDS_FILE}: grid {code!r}: bbox {value} is empty or outside the globe")
    return min_lon, min_lat, max_lon, max_lat


def load_grids(processes_dir: Path, units: dict) -> GridTable:
    """The grid table, checked against the unit tree (`units`: code → unit with a `kind`)."""
    path = Path(processes_dir) / GRIDS_FILE
    if not path.exists():
        return GridTable((), None)
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{GRIDS_FILE}: {exc}") from exc
    desk = doc.get("default_desk")
    if desk is not None and units and desk not in units:
        raise ValueError(f"{GRIDS_FILE}: default_desk {desk!r} is not a unit of organisation.toml")
    grids, seen = [], set()
    for row in doc.get("grids", []):
        code, community = row.get("code"), row.get("community")
        if not code or not community:
            raise ValueError(f"{GRIDS_FILE}: every grid needs a code and a community")
        if code in seen:
            raise ValueError(f"{GRIDS_FILE}: grid {code!r} is listed twice")
        if units and (community not in units or units[community].kind != "community"):
            raise ValueError(f"{GRIDS_FILE}: grid {code!r}: {community!r} is not a community of organisation.toml")
        seen.add(code)
        grids.append(Grid(code, community, _bbox(code, row.get("bbox"))))
    return GridTable(tuple(grids), desk)
