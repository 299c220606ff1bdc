"""One injectable clock for the whole application.

The calendar, the case services, SpiffWorkflow's timer module and the timer
service all ask this clock for "now", so tests can travel in time without
sleeping and a replay can run with the recorded instants as its clock.
Instants are always timezone-aware UTC datetimes.

A `ScaledClock` runs N times faster than real time (a demo or a training
instance where lights turn red within minutes; later, a simulation). Code
that waits in real time for an instant on this clock (the timer service's
scheduler) or holds something for a span of clock time (timer leases) asks
the clock to convert: `real_seconds(clock_seconds)` and `span(real)`.
"""
from __future__ import annotations

import contextlib
import threading
import time
from datetime import datetime, timedelta, timezone


class Clock:
    """The real clock."""

    speed = 1.0

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def real_seconds(self, clock_seconds: float) -> float:
        """How long to wait in real time for `clock_seconds` to pass on this clock."""
        return clock_seconds / self.speed

    def span(self, real: timedelta) -> timedelta:
        """The stretch of this clock's time that passes during `real` real time."""
        return real * self.speed


class ScaledClock(Clock):
    """A clock running `speed` times faster than real time, from `start` (default: now).

    One real second is `speed` seconds on this clock: at speed 3600 an hour
    passes every second, a working day in about nine. `set_speed` changes the
    pace from the current instant on, without a jump.
    """

    def __init__(self, speed: float = 1.0, start: datetime | None = None, *, real=time.monotonic):
        if start is not None and start.tzinfo is None:
            raise ValueError("ScaledClock needs an aware datetime")
        self._real = real
        self._lock = threading.Lock()
        self._rebase(start or datetime.now(timezone.utc), self._checked(speed))

    @staticmethod
    def _checked(speed) -> float:
        speed = float(speed)
        if not speed > 0 or speed == float("inf"):
            raise ValueError(f"a clock's speed must be a positive number, not {speed!r}")
        return speed

    def _rebase(self, start: datetime, speed: float) -> None:
        self._start = start.astimezone(timezone.utc)
        self._real_start = self._real()
        self.speed = speed

    def now(self) -> datetime:
        with self._lock:
            return self._start + timedelta(seconds=(self._real() - self._real_start) * self.speed)

    def set_speed(self, speed: float) -> None:
        speed = self._checked(speed)
        with self._lock:
            at = self._start + timedelta(seconds=(self._real() - self._real_start) * self.speed)
            self._rebase(at, speed)


class ManualClock(Clock):
    """A clock that only moves when told to (tests, benchmarks, replay)."""

    def __init__(self, start: datetime | None = None):
        start = start or datetime.now(timezone.utc)
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start.astimezone(timezone.utc)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        with self._lock:
            self._now = instant.astimezone(timezone.utc)

    def advance(self, delta: timedelta | None = None, **kwargs) -> datetime:
        delta = delta if delta is not None else timedelta(**kwargs)
        with self._lock:
            self._now = self._now + delta
            return self._now


_current: Clock = Clock()
# A clock for this thread only (a replay), overriding the process-wide one for its duration.
_local = threading.local()


def get_clock() -> Clock:
    return getattr(_local, "clock", None) or _current


def now() -> datetime:
    return get_clock().now()


def set_clock(clock: Clock) -> Clock:
    """Install `clock` process-wide (SpiffWorkflow's timer module included); returns the previous one."""
    global _current
    previous, _current = _current, clock
    _patch_spiff_timer_module()
    return previous


@contextlib.contextmanager
def using_clock(clock: Clock):
    previous = set_clock(clock)
    try:
        yield clock
    finally:
        set_clock(previous)


@contextlib.contextmanager
def thread_clock(clock: Clock):
    """Install `clock` for the calling thread only (replays run beside live operations)."""
    _patch_spiff_timer_module()
    previous = getattr(_local, "clock", None)
    _local.clock = clock
    try:
        yield clock
    finally:
        _local.clock = previous


class _ClockedDatetime(datetime):
    """Stands in for `datetime` inside SpiffWorkflow's timer module: its now() reads our clock."""

    @classmethod
    def now(cls, tz=None):
        instant = now()
        return instant.astimezone(tz) if tz is not None else instant.astimezone().replace(tzinfo=None)


_patched = False


def _patch_spiff_timer_module() -> None:
    # SpiffWorkflow calls datetime.now(timezone.utc) directly, with no clock injection.
    global _patched
    if _patched:
        return
    from SpiffWorkflow.bpmn.specs.event_definitions import timer

    timer.datetime = _ClockedDatetime
    _patched = True
