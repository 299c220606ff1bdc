"""Periodic screening (矛盾排查): the schedule of each level and the periods its rounds belong to.

`processes/screening.toml` names, per level, how often a round opens (every
day, week or fortnight), which units screen (by kind, optionally only those
at one level of the tree) and how many working days each unit has for its
findings. A level's cycle timer fires daily at `fire_at`; `period_start`
maps a day to the first day of its period, and a round opens only on a
working day for a period that has none yet — so a cycle opens one round per
period however often it fires, and after a downtime it catches up once (the
period now), never once per missed firing. `screening_functions` gives the
BPMN its timer expression: `screening_cycle()` is "R/<next fire_at>/P1D".
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

from engine import clock

FILE = "screening.toml"
EVERY = ("day", "week", "fortnight")


@dataclass(frozen=True)
class ScreeningLevel:
    key: str
    name: str
    every: str
    kinds: tuple[str, ...]
    level: str | None
    deadline_days: int


@dataclass(frozen=True)
class ScreeningSchedule:
    fire_at: time
    anchor: date
    levels: dict[str, ScreeningLevel]

    def period_start(self, level: str, day: date) -> date:
        every = self.levels[level].every
        if every == "day":
            return day
        if every == "week":
            return day - timedelta(days=day.weekday())
        return day - timedelta(days=(day - self.anchor).days % 14)

    def units(self, level: str, org) -> list[str]:
        rule = self.levels[level]
        return sorted(c for c, u in org.units.items() if u.active and u.kind in rule.kinds
                      and (rule.level is None or org.level_of(c) == rule.level))


def load_screening(processes_dir: Path) -> ScreeningSchedule:
    """Read and check screening.toml (an empty schedule when the file is absent); ValueError names the key."""
    path = Path(processes_dir) / FILE
    if not path.exists():
        return ScreeningSchedule(time(8, 30), date(2025, 1, 6), {})
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
        fire_at = time.fromisoformat(doc.get("fire_at", "08:30"))
        anchor = date.fromisoformat(doc.get("anchor", "2025-01-06"))
    except (tomllib.TOMLDecodeError, ValueError, TypeError) as exc:
        raise ValueError(f"{FILE}: {exc}") from exc
    if anchor.weekday() != 0:
        raise ValueError(f"{FILE}: anchor must be a Monday")
    levels = {}
    for key, row in doc.get("levels", {}).items():
        if row.get("every") not in EVERY:
            raise ValueError(f"{FILE}: levels.{key}.every must be one of {', '.join(EVERY)}")
        days = row.get("deadline_days")
        if isinstance(days, bool) or not isinstance(days, int) or days <= 0:
            raise ValueError(f"{FILE}: levels.{key}.deadline_days must be a positive integer")
        kinds = row.get("kinds")
        if not isinstance(kinds, list) or not kinds or not all(isinstance(k, str) for k in kinds):
            raise ValueError(f"{FILE}: levels.{key}.kinds must list unit kinds")
        levels[key] = ScreeningLevel(key, str(row.get("name", key)), row["every"], tuple(kinds), row.get("level"),
                                     days)
    return ScreeningSchedule(fire_at, anchor, levels)


def screening_functions(schedule: ScreeningSchedule, calendar) -> dict:
    def screening_cycle() -> str:
        now = clock.now().astimezone(calendar.tz)
        first = datetime.combine(now.date(), schedule.fire_at, tzinfo=calendar.tz)
        if first <= now:
            first += timedelta(days=1)
        return f"R/{first.isoformat()}/P1D"

    return {"screening_cycle": screening_cycle}
