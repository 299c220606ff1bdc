"""Tests for engine.rules.calendar: working days under China's holidays and 调休."""
from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest

from engine.clock import ManualClock, using_clock
from engine.rules.calendar import (
    Deadline,
    WorkingCalendar,
    load_calendar,
    load_time_limits,
    sandbox_functions,
)

SH = ZoneInfo("Asia/Shanghai")
PROCESSES = Path(__file__).resolve().parent.parent / "processes"


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SH)


@pytest.fixture
def cal() -> WorkingCalendar:
    return WorkingCalendar()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "calendar_overrides.toml"
    path.write_text(text, encoding="utf-8")
    return path


# -- the facts, checked against chinese_calendar (the source of truth) --------

def test_facts_match_chinese_calendar(cal):
    for d in range(1, 8):
        assert not chinese_calendar.is_workday(date(2024, 10, d))
        assert not cal.is_working_day(date(2024, 10, d))
    # National Day 2024 make-up days: Sun 2024-09-29 and Sat 2024-10-12
    for d in (date(2024, 9, 29), date(2024, 10, 12)):
        assert d.weekday() >= 5
        assert chinese_calendar.is_workday(d) and cal.is_working_day(d)
    assert date(2024, 9, 29).weekday() == 6 and date(2024, 10, 12).weekday() == 5
    # Spring Festival 2025: Jan 28 - Feb 4 off; make-up Sun 2025-01-26 and Sat 2025-02-08
    d = date(2025, 1, 28)
    while d <= date(2025, 2, 4):
        assert not chinese_calendar.is_workday(d) and not cal.is_working_day(d)
        d += timedelta(days=1)
    for d in (date(2025, 1, 26), date(2025, 2, 8)):
        assert d.weekday() >= 5
        assert chinese_calendar.is_workday(d) and cal.is_working_day(d)
    assert cal.is_covered(date(2004, 1, 1)) and cal.is_covered(date(2026, 12, 31))
    assert not cal.is_covered(date(2027, 1, 1))


def test_agrees_with_chinese_calendar_over_2024_2025(cal):
    d = date(2024, 1, 1)
    while d < date(2026, 1, 1):
        assert cal.is_working_day(d) == chinese_calendar.is_workday(d), d
        d += timedelta(days=1)


# -- add_working_days ------------------------------------------------------------

def test_one_day_across_national_day(cal):
    dl = cal.add_working_days(local(2024, 9, 30, 10, 0), 1)
    assert isinstance(dl, Deadline)
    assert dl.at == local(2024, 10, 8, 17, 30)
    assert dl.at.tzinfo == timezone.utc
    assert dl.fallback is False
    assert dl.iso() == "2024-10-08T17:30:00+08:00"
    assert datetime.fromisoformat(dl.iso()) == dl.at


def test_friday_to_sunday_make_up_day(cal):
    dl = cal.add_working_days(local(2024, 9, 27, 15, 0), 1)
    assert dl.at == local(2024, 9, 29, 17, 30)


def test_seven_days_across_spring_festival(cal):
    # Fri 2025-01-24: Sun 26, Mon 27, (28 Jan - 4 Feb off), Wed 5, Thu 6, Fri 7, Sat 8, Mon 10
    dl = cal.add_working_days(local(2025, 1, 24, 10, 0), 7)
    assert dl.at == local(2025, 2, 10, 17, 30)
    assert len(chinese_calendar.get_workdays(date(2025, 1, 25), date(2025, 2, 10))) == 7


def test_start_instant_converted_to_local_date(cal):
    # 2024-09-29T20:00Z is already Monday 2024-09-30 04:00 in Shanghai
    dl = cal.add_working_days(datetime(2024, 9, 29, 20, 0, tzinfo=timezone.utc), 1)
    assert dl.at == local(2024, 10, 8, 17, 30)


def test_zero_days(cal):
    assert cal.add_working_days(local(2024, 9, 30, 9, 0), 0).at == local(2024, 9, 30, 17, 30)
    assert cal.add_working_days(local(2024, 10, 3, 9, 0), 0).at == local(2024, 10, 8, 17, 30)


def test_add_working_days_property_2025(cal):
    start = date(2025, 1, 1)
    for offset in range(365):
        d = start + timedelta(days=offset)
        for n in (1, 3, 7):
            due = cal.add_working_days(datetime.combine(d, time(10), SH), n).at.astimezone(SH)
            assert due.time() == time(17, 30)
            assert chinese_calendar.is_workday(due.date())
            assert len(chinese_calendar.get_workdays(d + timedelta(days=1), due.date())) == n


# -- add_working_hours -----------------------------------------------------------

def test_hours_within_a_day(cal):
    assert cal.add_working_hours(local(2024, 9, 23, 9, 0), 3.5).at == local(2024, 9, 23, 12, 30)
    assert cal.add_working_hours(local(2024, 9, 23, 8, 30), 9).at == local(2024, 9, 23, 17, 30)
    assert cal.add_working_hours(local(2024, 9, 23, 9, 0), 0.25).at == local(2024, 9, 23, 9, 15)


def test_hours_across_weekend(cal):
    # Friday 16:30 + 4 h: 1 h on Friday, 3 h on Monday
    dl = cal.add_working_hours(local(2024, 9, 20, 16, 30), 4)
    assert dl.at == local(2024, 9, 23, 11, 30)
    assert dl.fallback is False


def test_hours_across_holiday(cal):
    # Mon 2024-09-30 15:00 + 4 h: 2.5 h that day, 1.5 h on Tue 2024-10-08
    assert cal.add_working_hours(local(2024, 9, 30, 15, 0), 4).at == local(2024, 10, 8, 10, 0)


def test_hours_start_outside_office_hours(cal):
    assert cal.add_working_hours(local(2024, 10, 8, 7, 0), 1).at == local(2024, 10, 8, 9, 30)
    assert cal.add_working_hours(local(2024, 9, 23, 18, 0), 1).at == local(2024, 9, 24, 9, 30)
    assert cal.add_working_hours(local(2024, 9, 23, 17, 30), 1).at == local(2024, 9, 24, 9, 30)
    assert cal.add_working_hours(local(2024, 10, 5, 11, 0), 1).at == local(2024, 10, 8, 9, 30)
    assert cal.add_working_hours(local(2024, 10, 5, 11, 0), 0).at == local(2024, 10, 8, 8, 30)


def test_custom_office_hours():
    cal = WorkingCalendar(day_start=time(9, 0), day_end=time(17, 0))
    assert cal.add_working_hours(local(2024, 9, 20, 16, 0), 2).at == local(2024, 9, 23, 10, 0)
    assert cal.add_working_days(local(2024, 9, 20, 16, 0), 1).at == local(2024, 9, 23, 17, 0)


# -- subtract_working_days / working_days_between ------------------------------------

def test_subtract_across_holiday(cal):
    due = local(2024, 10, 8, 17, 30)
    assert cal.subtract_working_days(due, 1).at == local(2024, 9, 30, 17, 30)
    assert cal.subtract_working_days(due, 2).at == local(2024, 9, 29, 17, 30)  # Sunday make-up day
    assert cal.subtract_working_days(due, 0).at == due


def test_subtract_from_a_day_off_lands_on_working_day(cal):
    assert cal.subtract_working_days(local(2024, 10, 3, 12, 0), 0).at == local(2024, 9, 30, 12, 0)
    assert cal.subtract_working_days(local(2025, 2, 10, 17, 30), 1).at == local(2025, 2, 8, 17, 30)


def test_working_days_between(cal):
    start = local(2024, 9, 30, 10, 0)
    assert cal.working_days_between(start, local(2024, 10, 9, 9, 0)) == 2
    assert cal.working_days_between(start, local(2024, 10, 7, 9, 0)) == 0
    assert cal.working_days_between(start, local(2024, 9, 30, 17, 0)) == 0
    assert cal.working_days_between(start, local(2024, 9, 1)) == 0
    assert cal.working_days_between(local(2025, 1, 24, 10), local(2025, 2, 10, 18)) == 7


# -- override file ---------------------------------------------------------------

def test_override_adds_closure_and_workday(tmp_path):
    path = write(tmp_path, '[extra]\nclosures = ["2024-10-08"]\nworkdays = [2024-10-05]\n')
    cal = WorkingCalendar(overrides_path=path)
    assert not cal.is_working_day(date(2024, 10, 8))
    assert cal.is_working_day(date(2024, 10, 5))
    assert cal.add_working_days(local(2024, 10, 4, 10, 0), 1).at == local(2024, 10, 5, 17, 30)
    assert cal.add_working_days(local(2024, 10, 6, 10, 0), 1).at == local(2024, 10, 9, 17, 30)


def test_override_office_hours(tmp_path):
    path = write(tmp_path, '[office]\nday_start = "09:00"\nday_end = "18:00"\n')
    cal = WorkingCalendar(overrides_path=path)
    assert (cal.day_start, cal.day_end) == (time(9), time(18))


@pytest.mark.parametrize("text, message", [
    ("[extra]\nclosure = []\n", "unknown key"),
    ('[extra]\nclosures = ["2024-13-01"]\n', "not a date"),
    ('[extra]\nclosures = ["2024-10-08"]\nworkdays = ["2024-10-08"]\n', "both"),
    ('[years.2027]\nholidays = ["2028-01-01"]\n', "not in 2027"),
    ('[years.27]\nholidays = []\n', "four digits"),
    ('[office]\nday_start = "18:00"\n', "before day_end"),
    ("[extra\n", "invalid TOML"),
])
def test_bad_override_file(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        WorkingCalendar(overrides_path=write(tmp_path, text))


def test_shipped_override_file_has_no_active_entries():
    cal = load_calendar(PROCESSES, "Asia/Shanghai")
    assert cal.overrides_path == PROCESSES / "calendar_overrides.toml"
    assert not cal._years and not cal._extra_closures and not cal._extra_workdays
    assert (cal.day_start, cal.day_end) == (time(8, 30), time(17, 30))


def test_load_calendar_without_file(tmp_path):
    cal = load_calendar(tmp_path, "Asia/Shanghai")
    assert cal.overrides_path is None
    assert cal.is_working_day(date(2024, 9, 29))


# -- uncovered years -------------------------------------------------------------

def test_2027_falls_back_to_weekends_with_one_warning(caplog):
    cal = WorkingCalendar()
    with caplog.at_level(logging.WARNING, logger="engine.rules.calendar"):
        dl = cal.add_working_days(local(2027, 1, 1, 10, 0), 1)  # Friday
        assert dl.at == local(2027, 1, 4, 17, 30)
        assert dl.fallback is True
        assert cal.add_working_days(local(2027, 3, 5, 10, 0), 1).fallback is True
        assert cal.is_working_day(date(2027, 10, 1))  # weekday, counted although surely a holiday
        assert not cal.is_working_day(date(2027, 10, 2))
        assert not cal.is_covered(date(2027, 10, 2))
    warnings = [r for r in caplog.records if r.name == "engine.rules.calendar" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "2027" in warnings[0].getMessage()


def test_fallback_when_crossing_into_uncovered_year(cal):
    dl = cal.add_working_days(local(2026, 12, 31, 10, 0), 1)
    assert dl.at == local(2027, 1, 1, 17, 30)
    assert dl.fallback is True
    assert cal.add_working_days(local(2026, 12, 30, 10, 0), 1).fallback is False


def test_2027_entered_in_override_file_is_covered(tmp_path, caplog):
    path = write(tmp_path, """
[years.2027]
holidays = ["2027-01-01", "2027-02-08"]
workdays = ["2027-01-09"]
""")
    cal = WorkingCalendar(overrides_path=path)
    with caplog.at_level(logging.WARNING, logger="engine.rules.calendar"):
        assert cal.is_covered(date(2027, 6, 1))
        dl = cal.add_working_days(local(2026, 12, 31, 10, 0), 1)
        assert dl.at == local(2027, 1, 4, 17, 30)  # New Year's Day off
        assert dl.fallback is False
        assert cal.add_working_days(local(2027, 1, 8, 10, 0), 1).at == local(2027, 1, 9, 17, 30)  # Sat make-up
        assert not cal.is_working_day(date(2027, 2, 8))
        assert not cal.is_working_day(date(2027, 1, 16))  # ordinary Saturday
    assert not [r for r in caplog.records if r.name == "engine.rules.calendar"]


# -- sandbox functions -----------------------------------------------------------

def test_sandbox_functions(cal):
    fns = sandbox_functions(cal)
    assert set(fns) == {"add_working_days", "add_working_hours", "warn_before"}
    with using_clock(ManualClock(datetime(2024, 9, 30, 2, 0, tzinfo=timezone.utc))):  # 10:00 +08:00
        due = fns["add_working_days"](1)
        assert due.endswith("+08:00")
        assert datetime.fromisoformat(due) == local(2024, 10, 8, 17, 30)

        assert datetime.fromisoformat(fns["add_working_hours"](4)) == local(2024, 9, 30, 14, 0)
        assert datetime.fromisoformat(fns["add_working_hours"](9)) == local(2024, 10, 8, 10, 0)

        warn = fns["warn_before"](due, 1)
        assert datetime.fromisoformat(warn) == local(2024, 9, 30, 17, 30)
        assert datetime.fromisoformat(fns["warn_before"]("2024-10-08T09:30:00Z", 1)) == local(2024, 9, 30, 17, 30)

        # would be in the past: now instead
        now_iso = fns["warn_before"](due, 3)
        assert datetime.fromisoformat(now_iso) == datetime(2024, 9, 30, 2, 0, tzinfo=timezone.utc)
        assert now_iso[-6:] in ("+08:00", "+00:00") or now_iso.endswith("Z")

        with pytest.raises(ValueError, match="timezone-aware"):
            fns["warn_before"]("2024-10-08T17:30:00", 1)
        with pytest.raises(ValueError, match="ISO 8601"):
            fns["warn_before"]("next tuesday", 1)
        with pytest.raises(ValueError, match="negative"):
            fns["add_working_days"](-1)


# -- validation ------------------------------------------------------------------

def test_input_validation(cal):
    naive = datetime(2024, 9, 30, 10, 0)
    with pytest.raises(ValueError, match="negative"):
        cal.add_working_days(local(2024, 9, 30, 10), -1)
    with pytest.raises(ValueError, match="integer"):
        cal.add_working_days(local(2024, 9, 30, 10), 1.5)
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.add_working_days(naive, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.add_working_hours(naive, 1)
    with pytest.raises(ValueError, match="negative"):
        cal.add_working_hours(local(2024, 9, 30, 10), -0.5)
    with pytest.raises(ValueError, match="finite"):
        cal.add_working_hours(local(2024, 9, 30, 10), float("nan"))
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.subtract_working_days(naive, 1)
    with pytest.raises(ValueError, match="negative"):
        cal.subtract_working_days(local(2024, 9, 30, 10), -1)
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.working_days_between(naive, local(2024, 10, 9))
    with pytest.raises(ValueError, match="time zone"):
        WorkingCalendar(tz="Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="date"):
        cal.is_working_day(local(2024, 9, 30, 10))


# -- time limits -----------------------------------------------------------------

def test_load_time_limits():
    limits = load_time_limits(PROCESSES)
    assert limits["warning"]["days_before_due"] == 1
    assert {k: limits["steps"][k] for k in ("mediation", "sign_for", "approval", "evaluation", "review")} == \
        {"mediation": 3, "sign_for": 1, "approval": 1, "evaluation": 3, "review": 3}
    assert limits["steps"]["mediation_accept"] == 1 and limits["mediation_bodies"]["medical_mediation"] == 22
    assert limits["handling"] == {"administrative_approval": 7, "law_and_regulation": 17, "routine": 9}
    assert limits["escalation"]["joint_meeting"] == 10
    assert {k: limits["rework"][k] for k in ("max_reworks", "max_returns")} == {"max_reworks": 3, "max_returns": 3}


@pytest.mark.parametrize("bad", ["0", "-2", "1.5", '"3"', "true"])
def test_load_time_limits_rejects_bad_value(tmp_path, bad):
    text = (PROCESSES / "time_limits.toml").read_text(encoding="utf-8")
    text = text.replace("mediation = 3", f"mediation = {bad}")
    (tmp_path / "time_limits.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=r"steps\.mediation"):
        load_time_limits(tmp_path)


def test_load_time_limits_missing_section(tmp_path):
    text = (PROCESSES / "time_limits.toml").read_text(encoding="utf-8")
    (tmp_path / "time_limits.toml").write_text(text.replace("[rework]", "[reworks]"), encoding="utf-8")
    with pytest.raises(ValueError, match=r"rework"):
        load_time_limits(tmp_path)


def test_working_days_between_counts_as_walking_day_by_day(cal):
    """The per-year tables give exactly the day-by-day count, across years, holidays and make-up days."""
    import random

    rng = random.Random(5)
    tz = ZoneInfo("Asia/Shanghai")
    for _ in range(300):
        a = datetime(2023, 1, 1, tzinfo=tz) + timedelta(hours=rng.uniform(0, 3 * 365 * 24))
        b = a + timedelta(hours=rng.uniform(-48, 400 * 24))
        expected, d = 0, a.date()
        while b > a and d < b.date():
            d += timedelta(days=1)
            expected += cal.is_working_day(d)
        assert cal.working_days_between(a, b) == expected, (a, b)


@pytest.mark.parametrize("tz", ["Asia/Shanghai", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"])
def test_local_dates_and_working_days_from_microseconds_equal_the_aware_datetimes(tz):
    """The statistics read instants as integer microseconds: the local date and the working days between
    two instants come out exactly as from aware datetimes, across changes of offset (DST, half hours)."""
    cal = WorkingCalendar(tz)
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    instants = [datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=97 * i, microseconds=i)
                for i in range(0, 6000)]
    # each side of every change of offset in 2024, to the microsecond
    for day in range(366):
        noon = datetime(2024, 1, 1, 12, tzinfo=timezone.utc) + timedelta(days=day)
        if (noon - timedelta(days=1)).astimezone(ZoneInfo(tz)).utcoffset() != noon.astimezone(ZoneInfo(tz)).utcoffset():
            t = noon - timedelta(days=1)
            while t.astimezone(ZoneInfo(tz)).utcoffset() == (noon - timedelta(days=1)).astimezone(ZoneInfo(tz)).utcoffset():
                t += timedelta(minutes=1)
            instants += [t - timedelta(microseconds=1), t, t + timedelta(microseconds=1)]
    instants.sort()
    micros = [(i - epoch) // timedelta(microseconds=1) for i in instants]
    for instant, us in zip(instants, micros):
        assert cal.local_date_of_micros(us) == instant.astimezone(ZoneInfo(tz)).date(), instant
    for a, b, ua, ub in zip(instants, instants[37:], micros, micros[37:]):
        local_a, local_b = cal.local_date_of_micros(ua), cal.local_date_of_micros(ub)
        assert cal.working_days_after(local_a, local_b) == cal.working_days_between(a, b)
        assert cal.working_days_after(local_b, local_a) == cal.working_days_between(b, a) == 0
