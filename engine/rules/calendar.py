"""Working-day calendar and time limits for government deadlines.

Time limits in dispute resolution count working days (工作日) under China's
statutory holidays and make-up working days (调休), and some count working
hours inside office hours. This module holds:

* `WorkingCalendar`: which days are worked, and deadline arithmetic
  (`add_working_days`, `add_working_hours`, `subtract_working_days`,
  `working_days_between`). The published arrangement comes from the
  `chinesecalendar` package; `processes/calendar_overrides.toml` lets an
  administrator add local closures and working days, and enter a whole
  year's arrangement before the package covers it. A day in a year nobody
  covers falls back to weekends-only, is logged once per year, and marks the
  resulting `Deadline` with `fallback=True` so callers can flag it.
* `load_calendar`, `load_time_limits`: read the calendar overrides and
  `processes/time_limits.toml` (the one place for time limits) from the
  processes directory.
* `sandbox_functions`: the functions offered to BPMN timer expressions; they
  take "now" from `engine.clock`, so tests and replays control time.

All instants taken and returned are timezone-aware; days are counted in the
calendar's local time zone (Asia/Shanghai by default). Invalid input raises
`ValueError` with a message naming what is wrong.
"""
from __future__ import annotations

import logging
import math
import threading
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import chinese_calendar

from engine import clock

logger = logging.getLogger(__name__)

OVERRIDES_FILE = "calendar_overrides.toml"
TIME_LIMITS_FILE = "time_limits.toml"

_ONE_DAY = timedelta(days=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_MICROSECOND = timedelta(microseconds=1)
_HOUR_US, _DAY_US = 3_600_000_000, 86_400_000_000
_HOUR_LAST = timedelta(hours=1) - _MICROSECOND
_UNKNOWN = object()


@dataclass(frozen=True)
class Deadline:
    """A computed due instant.

    `at` is an aware UTC datetime. `fallback` is True when any day examined
    lay in a year with no published arrangement, so weekends-only was assumed
    and the instant may be wrong. `tz` only chooses how `iso()` renders it.
    """

    at: datetime
    fallback: bool = False
    tz: str = field(default="UTC", compare=False)

    def iso(self) -> str:
        """ISO 8601 with offset, rendered in the calendar's local time zone."""
        return self.at.astimezone(ZoneInfo(self.tz)).isoformat()


def _require_aware(value: Any, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got naive {value.isoformat()}")
    return value


def _require_count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} must be an integer number of working days, got {value!r}")
    if value < 0:
        raise ValueError(f"{what} must not be negative, got {value}")
    return value


def _parse_hhmm(value: Any, where: str) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        try:
            return time.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"{where} must be a time like \"08:30\", got {value!r}")


def _parse_date(value: Any, where: str) -> date:
    # TOML has native local dates (2027-01-01); quoted strings are accepted too.
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"{where}: {value!r} is not a date like \"2027-01-01\"")


def _parse_dates(value: Any, where: str) -> frozenset[date]:
    if value is None:
        return frozenset()
    if not isinstance(value, list):
        raise ValueError(f"{where} must be a list of dates, got {value!r}")
    return frozenset(_parse_date(item, where) for item in value)


def _check_keys(table: Any, allowed: set[str], where: str) -> dict:
    if not isinstance(table, dict):
        raise ValueError(f"{where} must be a table, got {table!r}")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    return table


@dataclass(frozen=True)
class _YearArrangement:
    holidays: frozenset[date]
    workdays: frozenset[date]


class WorkingCalendar:
    """Working days and office hours in one time zone.

    A day's status is decided, in order, by: the override file's `[extra]`
    closures and workdays; the override file's `[years.YYYY]` arrangement
    (which replaces the package's data for that year); chinesecalendar; and
    finally weekends-only, for years nobody covers (warned once per year).
    Office hours come from the constructor, or from `[office]` in the
    override file when it sets them.
    """

    def __init__(
        self,
        tz: str = "Asia/Shanghai",
        overrides_path: str | Path | None = None,
        day_start: time = time(8, 30),
        day_end: time = time(17, 30),
    ):
        try:
            self.tz_name = tz
            self.tz = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise ValueError(f"unknown time zone {tz!r}") from exc
        self.overrides_path = Path(overrides_path) if overrides_path is not None else None
        self._years: dict[int, _YearArrangement] = {}
        self._extra_closures: frozenset[date] = frozenset()
        self._extra_workdays: frozenset[date] = frozenset()
        self._package_years: dict[int, bool] = {}
        self._day_cache: dict[date, tuple[bool, bool]] = {}
        self._year_counts: dict[int, list[int]] = {}  # per year: working days from 1 January up to each day
        self._between: dict[tuple[date, date], int] = {}  # working_days_between of two local dates
        self._hour_offsets: dict[int, int | None] = {}  # local_date_of_micros: UTC offset per UTC hour
        self._warned_years: set[int] = set()
        self._lock = threading.Lock()
        if self.overrides_path is not None:
            day_start, day_end = self._load_overrides(self.overrides_path, day_start, day_end)
        for name, value in (("day_start", day_start), ("day_end", day_end)):
            if not isinstance(value, time) or value.tzinfo is not None:
                raise ValueError(f"{name} must be a naive datetime.time, got {value!r}")
        if not day_start < day_end:
            raise ValueError(f"day_start ({day_start}) must be before day_end ({day_end})")
        self.day_start = day_start
        self.day_end = day_end

    # -- override file --------------------------------------------------

    def _load_overrides(self, path: Path, day_start: time, day_end: time) -> tuple[time, time]:
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise FileNotFoundError(f"calendar override file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: invalid TOML: {exc}") from exc
        where = str(path)
        _check_keys(data, {"office", "years", "extra"}, where)

        office = _check_keys(data.get("office", {}), {"day_start", "day_end"}, f"{where} [office]")
        if "day_start" in office:
            day_start = _parse_hhmm(office["day_start"], f"{where} [office] day_start")
        if "day_end" in office:
            day_end = _parse_hhmm(office["day_end"], f"{where} [office] day_end")

        years = data.get("years", {})
        if not isinstance(years, dict):
            raise ValueError(f"{where} [years] must be a table of [years.YYYY] sections")
        for key, table in years.items():
            section = f"{where} [years.{key}]"
            if not (isinstance(key, str) and key.isdigit() and len(key) == 4):
                raise ValueError(f"{section}: the year must be four digits, like [years.2027]")
            year = int(key)
            _check_keys(table, {"holidays", "workdays"}, section)
            holidays = _parse_dates(table.get("holidays"), f"{section} holidays")
            workdays = _parse_dates(table.get("workdays"), f"{section} workdays")
            for d in sorted(holidays | workdays):
                if d.year != year:
                    raise ValueError(f"{section}: {d.isoformat()} is not in {year}")
            both = sorted(holidays & workdays)
            if both:
                raise ValueError(f"{section}: {both[0].isoformat()} is listed both as holiday and workday")
            self._years[year] = _YearArrangement(holidays, workdays)

        extra = _check_keys(data.get("extra", {}), {"closures", "workdays"}, f"{where} [extra]")
        self._extra_closures = _parse_dates(extra.get("closures"), f"{where} [extra] closures")
        self._extra_workdays = _parse_dates(extra.get("workdays"), f"{where} [extra] workdays")
        both = sorted(self._extra_closures & self._extra_workdays)
        if both:
            raise ValueError(f"{where} [extra]: {both[0].isoformat()} is listed both as closure and workday")
        return day_start, day_end

    # -- days -------------------------------------------------------------

    def _package_covers(self, year: int) -> bool:
        covered = self._package_years.get(year)
        if covered is None:
            try:
                chinese_calendar.is_workday(date(year, 1, 1))
                covered = True
            except NotImplementedError:
                covered = False
            self._package_years[year] = covered
        return covered

    def is_covered(self, d: date) -> bool:
        """True when chinesecalendar or the override file publishes d's year."""
        d = self._as_date(d)
        return d.year in self._years or self._package_covers(d.year)

    def _day(self, d: date) -> tuple[bool, bool]:
        """(is working day, fallback used for d's year), cached: the calendar never changes once loaded."""
        cached = self._day_cache.get(d)
        if cached is None:
            cached = self._day_cache[d] = self._compute_day(d)
        return cached

    def _compute_day(self, d: date) -> tuple[bool, bool]:
        year = d.year
        fallback = not self.is_covered(d)
        if fallback:
            with self._lock:
                first = year not in self._warned_years
                self._warned_years.add(year)
            if first:
                logger.warning(
                    "no published holiday arrangement for %s (chinesecalendar %s covers up to %s): "
                    "counting weekends only; enter the year in %s",
                    year, getattr(chinese_calendar, "__version__", "?"), max(chinese_calendar.holidays).year,
                    self.overrides_path or OVERRIDES_FILE,
                )
        if d in self._extra_closures:
            return False, fallback
        if d in self._extra_workdays:
            return True, fallback
        arrangement = self._years.get(year)
        if arrangement is not None:
            if d in arrangement.workdays:
                return True, False
            return d.weekday() < 5 and d not in arrangement.holidays, False
        if not fallback:
            return bool(chinese_calendar.is_workday(d)), False
        return d.weekday() < 5, True

    @staticmethod
    def _as_date(d: Any) -> date:
        if isinstance(d, datetime):
            raise ValueError("expected a date, got a datetime; pass .date() of the local time")
        if not isinstance(d, date):
            raise ValueError(f"expected a date, got {type(d).__name__}")
        return d

    def is_working_day(self, d: date) -> bool:
        return self._day(self._as_date(d))[0]

    def _local(self, instant: datetime, what: str) -> datetime:
        """Naive local wall-clock time of an aware instant."""
        return _require_aware(instant, what).astimezone(self.tz).replace(tzinfo=None)

    def _deadline(self, local_naive: datetime, fallback: bool) -> Deadline:
        at = local_naive.replace(tzinfo=self.tz).astimezone(timezone.utc)
        return Deadline(at=at, fallback=fallback, tz=self.tz_name)

    # -- arithmetic -------------------------------------------------------

    def add_working_days(self, start: datetime, n: int) -> Deadline:
        """Due instant of "within n working days" from `start`.

        Counting starts the day after the local start date; the deadline is
        `day_end` on the n-th working day. n == 0 means `day_end` of the start
        day if it is a working day, else of the next working day.
        """
        _require_count(n, "n")
        d = self._local(start, "start").date()
        working, fallback = self._day(d)
        if n == 0:
            while not working:
                d += _ONE_DAY
                working, fb = self._day(d)
                fallback |= fb
        else:
            counted = 0
            while counted < n:
                d += _ONE_DAY
                working, fb = self._day(d)
                fallback |= fb
                counted += working
        return self._deadline(datetime.combine(d, self.day_end), fallback)

    def add_working_hours(self, start: datetime, hours: float) -> Deadline:
        """Due instant after `hours` of office time on working days.

        Office time is [day_start, day_end] of working days. A start outside
        office time counts from the next opening (so 0 hours from a Saturday is
        the next opening); a span that fills a day exactly ends at day_end.
        """
        if isinstance(hours, bool) or not isinstance(hours, (int, float)) or not math.isfinite(hours):
            raise ValueError(f"hours must be a finite number, got {hours!r}")
        if hours < 0:
            raise ValueError(f"hours must not be negative, got {hours}")
        local = self._local(start, "start")
        d = local.date()
        working, fallback = self._day(d)
        if working and local.time() <= self.day_end:
            cursor = max(local, datetime.combine(d, self.day_start))
        else:
            cursor, fb = self._next_opening(d)
            fallback |= fb
        remaining = timedelta(hours=hours)
        while True:
            available = datetime.combine(cursor.date(), self.day_end) - cursor
            if remaining <= available:
                return self._deadline(cursor + remaining, fallback)
            remaining -= available
            cursor, fb = self._next_opening(cursor.date())
            fallback |= fb

    def _next_opening(self, d: date) -> tuple[datetime, bool]:
        fallback = False
        while True:
            d += _ONE_DAY
            working, fb = self._day(d)
            fallback |= fb
            if working:
                return datetime.combine(d, self.day_start), fallback

    def subtract_working_days(self, due: datetime, n: int) -> Deadline:
        """The instant n working days before `due`, same local time of day.

        The result always lands on a working day: with n == 0 and `due` on a
        day off, it is the previous working day.
        """
        _require_count(n, "n")
        local = self._local(due, "due")
        d = local.date()
        working, fallback = self._day(d)
        counted = 0
        while counted < n or not working:
            d -= _ONE_DAY
            working, fb = self._day(d)
            fallback |= fb
            counted += working
        return self._deadline(datetime.combine(d, local.time()), fallback)

    def working_days_between(self, start: datetime, end: datetime) -> int:
        """How late: working days after start's local date up to and including end's.

        Called for every step of a period by the statistics, so the day count of each pair of local
        dates is kept (`_between`); an instant before another is never on a later local date (a
        repeated hour of a DST change stays on its day), so the instants are compared as they are.
        """
        _require_aware(start, "start")
        _require_aware(end, "end")
        if end <= start:
            return 0
        return self.working_days_after(start.astimezone(self.tz).date(), end.astimezone(self.tz).date())

    def local_date_of_micros(self, instant: int) -> date:
        """The local date of an instant given as microseconds since the epoch (how the statistics read a
        period's steps: compared as integers, never as aware datetimes): the UTC offset is looked up
        once per UTC hour (exact whenever it holds for the whole hour, as it does but in the hour of a
        change of offset, which is converted instant by instant)."""
        hour = instant // _HOUR_US
        offset = self._hour_offsets.get(hour, _UNKNOWN)
        if offset is _UNKNOWN:
            if len(self._hour_offsets) > 200_000:  # a long-running server: bounded
                self._hour_offsets.clear()
            first = _EPOCH + timedelta(microseconds=hour * _HOUR_US)
            a, b = first.astimezone(self.tz).utcoffset(), (first + _HOUR_LAST).astimezone(self.tz).utcoffset()
            offset = self._hour_offsets[hour] = a // _MICROSECOND if a == b else None
        if offset is None:
            return (_EPOCH + timedelta(microseconds=instant)).astimezone(self.tz).date()
        return date.fromordinal(_EPOCH_ORDINAL + (instant + offset) // _DAY_US)

    def working_days_after(self, a: date, b: date) -> int:
        """Working days after local date `a` up to and including `b` (0 when b is not after a)."""
        if b <= a:
            return 0
        found = self._between.get((a, b))
        if found is None:
            if len(self._between) > 100_000:  # a long-running server: bounded
                self._between.clear()
            upto = self._year_table(b.year)[b.timetuple().tm_yday - 1]
            before = self._year_table(a.year)[a.timetuple().tm_yday - 1]
            found = self._between[(a, b)] = upto - before + sum(self._year_table(y)[-1] for y in range(a.year, b.year))
        return found

    def _year_table(self, year: int) -> list[int]:
        """Working days from 1 January of `year` up to and including each of its days (built once)."""
        table = self._year_counts.get(year)
        if table is None:
            table, count, d = [], 0, date(year, 1, 1)
            while d.year == year:
                count += self._day(d)[0]
                table.append(count)
                d += _ONE_DAY
            self._year_counts[year] = table
        return table


def load_calendar(processes_dir: Path, tz: str = "Asia/Shanghai") -> WorkingCalendar:
    """The calendar, with `processes_dir/calendar_overrides.toml` if present."""
    path = Path(processes_dir) / OVERRIDES_FILE
    return WorkingCalendar(tz=tz, overrides_path=path if path.is_file() else None)


_TIME_LIMIT_SECTIONS = ("warning", "steps", "handling", "escalation", "rework")
_REQUIRED_TIME_LIMITS = ("warning.days_before_due", "rework.max_reworks", "rework.max_returns")


def load_time_limits(processes_dir: Path) -> dict:
    """Read and validate `processes_dir/time_limits.toml`.

    Every value must be a positive integer (working days, working hours for
    keys ending in `_hours`, or a count in `[rework]`); the sections
    warning, steps, handling, escalation and rework must be present.
    Raises ValueError naming the offending key.
    """
    path = Path(processes_dir) / TIME_LIMITS_FILE
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: invalid TOML: {exc}") from exc

    def check(table: dict, prefix: str) -> None:
        for key, value in table.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                check(value, f"{name}.")
            elif isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{path}: {name} must be a positive integer, got {value!r}")

    check(data, "")
    for section in _TIME_LIMIT_SECTIONS:
        if not isinstance(data.get(section), dict):
            raise ValueError(f"{path}: missing section [{section}]")
    for dotted in _REQUIRED_TIME_LIMITS:
        section, key = dotted.split(".")
        if key not in data[section]:
            raise ValueError(f"{path}: missing key {dotted}")
    return data


def sandbox_functions(calendar: WorkingCalendar) -> dict[str, Callable[..., str]]:
    """Functions for BPMN timer expressions; each returns an ISO 8601 instant with offset.

    `add_working_days(n)` and `add_working_hours(h)` count from `engine.clock.now()`;
    `warn_before(iso_due, n)` is n working days before `iso_due`, but never before now.
    """

    def add_working_days(n: int) -> str:
        return calendar.add_working_days(clock.now(), n).iso()

    def add_working_hours(h: float) -> str:
        return calendar.add_working_hours(clock.now(), h).iso()

    def warn_before(iso_due: str, n: int) -> str:
        if not isinstance(iso_due, str):
            raise ValueError(f"iso_due must be an ISO 8601 string, got {iso_due!r}")
        try:
            due = datetime.fromisoformat(iso_due)
        except ValueError:
            raise ValueError(f"iso_due is not an ISO 8601 instant: {iso_due!r}") from None
        _require_aware(due, "iso_due")
        warning = calendar.subtract_working_days(due, n)
        current = clock.now()
        if warning.at < current:
            return Deadline(at=current.astimezone(timezone.utc), tz=calendar.tz_name).iso()
        return warning.iso()

    return {
        "add_working_days": add_working_days,
        "add_working_hours": add_working_hours,
        "warn_before": warn_before,
    }
