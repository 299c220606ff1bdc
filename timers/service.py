"""`TimerService`: an explicit worker (bootstrap → refill and fire loop → teardown) around APScheduler.

APScheduler keeps the time: an interval job refills every `refill_seconds`,
and a date job per timer due soon wakes at its due instant. Neither fires
anything itself: they put the timer on a priority queue that `threads`
firing threads drain by calling the engine's `fire_timer`, one unit of work
each. Each refill leases, with `engine.core.timers.claim_timers`:
- *fresh* timers, due from `fresh_window` ago up to `horizon` ahead: the
  first `fresh_limit` of every due instant at the top priority, then the rest
  of a burst of timers due at one instant (every working day ends at 17:30,
  and so do most deadlines) one level down, and only up to `max_in_flight`
  leased and unfired (TIMER_MAX_IN_FLIGHT, default 100 per firing thread), so
  that every worker takes a share of a burst rather than the first one to
  see it leasing all of it for longer than it can fire;
- *backlog* timers, overdue for longer (they came due while everything was
  stopped), at most `backlog_batch` in flight, at the lowest priority and in
  due order,
so that neither a burst nor a backlog delays the timers coming due now.
Every `heartbeat_seconds` (real time) the worker writes its heartbeat
(engine.services.heartbeat), which `/readyz` and `/metrics` read.
Timers of one case due at one instant share one firing (the case fires all
its due timers at once). On PostgreSQL a firing thread may take up to
`fire_batch` (TIMER_FIRE_BATCH, default 1: off until measured to pay on the
machine at hand) due timers of different cases off the queue at once and fires
them in one transaction (`Database.atomic()`: each firing a savepoint, one
commit for all), so a burst pays one commit per batch rather than per timer;
a firing that fails rolls back its own savepoint only, and a batch whose
commit fails is retried whole (nothing of it was committed), so each timer
still fires exactly once. Each case's lock is held until its batch commits,
which is why batches stay small; on SQLite (one writer, whose lock the API
waits for) every firing is its own transaction (`fire_batch` 1). Leases expire, so the timers of a worker that died
are taken over by another. The scheduler reads the application's clock
(engine.clock): tests travel in time by moving the clock and calling `wakeup()`.
On a sped-up clock (`ScaledClock`, `flask demo --speed N`) instants stay on
that clock while the real waits between them shrink N times, and the refill
period, the horizon and the fresh window, which are about real latency, are
stretched to the same real durations on the clock.

When the database is away (`DatabaseUnavailable`) refills pause and firings
wait and retry with a doubling back-off, logging one line when the outage
starts and one when it ends; a firing whose commit was cut off is retried and
finds its timer gone if the commit went through, so nothing fires twice.
"""
from __future__ import annotations

import itertools
import logging
import os
import queue
import socket
import threading
import time
import uuid
from datetime import timedelta, timezone

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers import base as aps_base
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.exc import SQLAlchemyError

from engine import clock
from engine.core.timers import claim_timers, release_timers
from engine.errors import CaseError, DatabaseUnavailable
from engine.services import heartbeat
from engine.services.cases import fire_timer
from engine.store.db import Backoff, is_unavailable

log = logging.getLogger(__name__)

# APScheduler asks datetime.now() directly: make it ask the application's clock.
aps_base.datetime = clock._ClockedDatetime
# "skipped: maximum number of running instances reached" for a slow refill is expected, not a warning.
logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)  # "Running job ..." every second

FRESH, BURST, BACKLOG = 0, 1, 2


class ClockedScheduler(BackgroundScheduler):
    """APScheduler computing due instants on the application's clock and waiting for them in real time."""

    def _process_jobs(self):
        wait = super()._process_jobs()  # seconds until the next job, on the application's clock
        return None if wait is None else clock.get_clock().real_seconds(wait)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class TimerService:
    def __init__(self, rt, worker: str | None = None, *, horizon_seconds: float = 10.0,
                 refill_seconds: float = 1.0, fresh_window_seconds: float = 5.0, batch: int = 20000,
                 backlog_batch: int = 200, fresh_limit: int = 50, threads: int | None = None, outbox=None,
                 heartbeat_seconds: float = 5.0, fire_batch: int | None = None, max_in_flight: int | None = None):
        self.rt = rt
        self.outbox = outbox  # an engine.services.outbox.Dispatcher run as a job here (embedded), or None
        self.worker = worker or worker_name()
        self.horizon = timedelta(seconds=horizon_seconds)
        self.refill_seconds = refill_seconds
        self.fresh_window = timedelta(seconds=fresh_window_seconds)
        self.batch = batch
        self.backlog_batch = backlog_batch
        self.fresh_limit = fresh_limit
        self.heartbeat_seconds = heartbeat_seconds
        if fire_batch is None:
            fire_batch = 1 if rt.db.is_sqlite else int(os.environ.get("TIMER_FIRE_BATCH", "1"))
        self.fire_batch = max(1, fire_batch)
        # SQLite has one writer at a time: more firing threads would only queue on its lock.
        self.threads = threads or (1 if rt.db.is_sqlite else 2)
        # Timers leased and not yet fired, at most (beyond the first ones of each instant): a burst is
        # shared among the workers instead of leased whole to the first one whose refill sees it.
        self.max_in_flight = max_in_flight or int(os.environ.get("TIMER_MAX_IN_FLIGHT", 0)) or 100 * self.threads
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._queue: queue.PriorityQueue = queue.PriorityQueue()
        self._scheduled: set[int] = set()
        self._case_slots: set[tuple[int, object]] = set()
        self._backlog: set[int] = set()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.outcomes: dict[str, int] = {}
        self._backoff = Backoff()
        self._refill_paused_until = 0.0
        self._last_outage: DatabaseUnavailable | None = None
        self.scheduler = ClockedScheduler(
            timezone=timezone.utc, executors={"default": ThreadPoolExecutor(2)},
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        )

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> "TimerService":
        self._stopping.clear()
        for i in range(self.threads):
            thread = threading.Thread(target=self._fire_loop, name=f"timer-fire-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self.scheduler.start()
        # Every `refill_seconds` of real time, whatever the clock's speed (read once, at start).
        every = clock.get_clock().span(timedelta(seconds=self.refill_seconds))
        # start_date on the application's clock: APScheduler's own default reads the real one.
        self.scheduler.add_job(self.refill, "interval", seconds=every.total_seconds(), id="refill",
                               start_date=clock.now(), next_run_time=clock.now())
        beat_every = clock.get_clock().span(timedelta(seconds=self.heartbeat_seconds))
        self.scheduler.add_job(self.beat, "interval", seconds=beat_every.total_seconds(), id="heartbeat",
                               start_date=clock.now(), next_run_time=clock.now())
        if self.outbox is not None:
            self.scheduler.add_job(self.outbox.run_until_idle, "interval", seconds=self.outbox.settings.poll_seconds,
                                   id="outbox", start_date=clock.now(), next_run_time=clock.now())
        log.info("timer service %s started with %d firing thread(s)", self.worker, self.threads)
        return self

    def stop(self, wait: bool = True) -> None:
        self._stopping.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)
        if self.outbox is not None:
            self.outbox.release()
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads.clear()
        try:
            release_timers(self.rt, self.worker)
            heartbeat.forget(self.rt, self.worker)
        except Exception:  # shutting down: the leases and the heartbeat expire by themselves
            log.warning("could not release the timer leases of %s", self.worker, exc_info=True)

    def beat(self) -> None:
        """Say this worker is alive (a missed beat during an outage is simply late)."""
        try:
            heartbeat.beat(self.rt, self.worker)
        except DatabaseUnavailable as exc:
            self._unavailable(exc)
            return
        self._available()

    def wakeup(self) -> None:
        """Re-read the clock now (tests move the clock, then call this)."""
        self.scheduler.wakeup()

    # -- refill: lease timers and put them on the clock ------------------------------

    def refill(self) -> int:
        """Lease the timers due soon and the next slice of the backlog; returns how many were taken."""
        if time.monotonic() < self._refill_paused_until:
            return 0
        try:
            taken = self._refill()
        except DatabaseUnavailable as exc:
            self._refill_paused_until = time.monotonic() + self._unavailable(exc)
            return 0
        self._available()
        return taken

    def _refill(self) -> int:
        now = clock.now()
        horizon, fresh_window = clock.get_clock().span(self.horizon), clock.get_clock().span(self.fresh_window)
        taken = 0
        # The first `fresh_limit` of every due instant, whatever this worker holds already...
        for timer_id, due, case_id in claim_timers(self.rt, self.worker, until=now + horizon, limit=self.batch,
                                                   fresh_after=now - fresh_window, per_instant=self.fresh_limit):
            taken += self._take(timer_id, case_id, max(due, now), FRESH)
        # ...then the rest of a burst, only as much as this worker can fire before its leases run out:
        # the other workers take their share of it at their own refills.
        with self._lock:
            room = self.max_in_flight - len(self._scheduled)
        if room > 0:
            for timer_id, due, case_id in claim_timers(self.rt, self.worker, until=now + horizon, limit=room,
                                                       fresh_after=now - fresh_window):
                taken += self._take(timer_id, case_id, max(due, now), BURST)
        with self._lock:
            room = self.backlog_batch - len(self._backlog)
        if room > 0:
            for timer_id, due, case_id in claim_timers(self.rt, self.worker, until=now, limit=room,
                                                       overdue_before=now - fresh_window):
                taken += self._take(timer_id, case_id, now, BACKLOG)
        return taken

    def _take(self, timer_id: int, case_id: int, when, priority: int) -> int:
        with self._lock:
            if timer_id in self._scheduled:
                return 0
            if (case_id, when) in self._case_slots:
                # Another timer of the case fires at that instant, and that firing fires this one too;
                # should it not, this timer's lease expires and a later refill takes it again.
                return 0
            self._scheduled.add(timer_id)
            self._case_slots.add((case_id, when))
            if priority == BACKLOG:
                self._backlog.add(timer_id)
        item = (priority, when, next(self._seq), timer_id, case_id)
        if when <= clock.now():
            self._queue.put(item)
        else:
            self.scheduler.add_job(self._queue.put, "date", run_date=when, args=[item],
                                   id=f"timer:{timer_id}", replace_existing=True)
        return 1

    # -- the firing loop -------------------------------------------------------------

    def _fire_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                first = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            items = self._batch(first)
            outcomes = self._fire_many([item[3] for item in items])
            if outcomes is None:  # still leased to us: try again when the database answers
                self._stopping.wait(self._unavailable(self._last_outage))
                for priority, when, _, timer_id, case_id in items:
                    self._queue.put((priority, when, next(self._seq), timer_id, case_id))
                continue
            self._available()
            for (_, when, _, timer_id, case_id), outcome in zip(items, outcomes):
                try:
                    self._done(timer_id, case_id, when, outcome)
                except DatabaseUnavailable as exc:  # could not give the lease back: it expires by itself
                    self._unavailable(exc)

    def _batch(self, first) -> list:
        """`first` and up to fire_batch - 1 more due items of other cases, in queue order."""
        items, cases = [first], {first[4]}
        while len(items) < self.fire_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item[4] in cases:  # the same case twice in one transaction: leave it for the next one
                self._queue.put(item)
                break
            items.append(item)
            cases.add(item[4])
        return items

    def _fire_many(self, timer_ids: list[int]) -> list[str] | None:
        """The outcome of each firing, or None when the database is unavailable (nothing was committed).

        Any database error inside a batch ends the batch (rolled back whole); its timers are then
        fired one by one, each in its own transaction, as without batching.
        """
        if len(timer_ids) == 1:
            outcome = self._fire_once(timer_ids[0])
            return None if outcome == "unavailable" else [outcome]
        try:
            with self.rt.db.atomic():
                outcomes = [self._fire_in_batch(timer_id) for timer_id in timer_ids]
        except DatabaseUnavailable as exc:
            self._last_outage = exc
            return None
        except Exception as exc:
            if is_unavailable(exc):
                self._last_outage = self.rt.db.unavailable(exc)
                return None
            log.warning("a batch of %d timer firings failed (%s); firing them one by one", len(timer_ids),
                        type(exc).__name__)
            outcomes = [self._fire_once(timer_id) for timer_id in timer_ids]
            return None if "unavailable" in outcomes else outcomes
        return outcomes

    def _fire_in_batch(self, timer_id: int) -> str:
        try:
            return fire_timer(self.rt, timer_id, self.worker)
        except (DatabaseUnavailable, SQLAlchemyError):
            raise  # the database, not the case: the whole batch is rolled back and tried again
        except CaseError as exc:
            log.error("timer %s could not fire: %s", timer_id, exc.message)
            return "failed"
        except Exception:  # one broken case must not stop the others (its savepoint was rolled back)
            log.exception("timer %s raised", timer_id)
            return "error"

    # -- database outages --------------------------------------------------------------

    def _unavailable(self, exc: DatabaseUnavailable) -> float:
        """Count the failure, log the outage once, and return how long to wait."""
        wait = self._backoff.failed()
        with self._lock:
            self.outcomes["unavailable"] = self.outcomes.get("unavailable", 0) + 1
        if self._backoff.failures == 1:
            log.warning("timer service %s: database unavailable (%s); backing off", self.worker, exc.reason)
        return wait

    def _available(self) -> None:
        if self._backoff.reset():
            log.warning("timer service %s: database available again; resuming", self.worker)

    def _fire_once(self, timer_id: int) -> str:
        try:
            return fire_timer(self.rt, timer_id, self.worker)
        except DatabaseUnavailable as exc:
            self._last_outage = exc
            return "unavailable"
        except CaseError as exc:
            log.error("timer %s could not fire: %s", timer_id, exc.message)
            return "failed"
        except Exception:  # one broken case must not stop the worker
            log.exception("timer %s raised", timer_id)
            return "error"

    def _done(self, timer_id: int, case_id, when, outcome: str) -> None:
        with self._lock:
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
            self._scheduled.discard(timer_id)
            self._case_slots.discard((case_id, when))
            was_backlog = timer_id in self._backlog
            self._backlog.discard(timer_id)
            low = was_backlog and len(self._backlog) <= self.backlog_batch // 2
        if outcome in ("busy", "not_due", "failed", "error"):
            # Give the lease back: the next refill (of any worker) tries again.
            release_timers(self.rt, self.worker, [timer_id])
        if low and self.scheduler.running and not self._stopping.is_set():
            try:  # draining the backlog: fetch the next slice now rather than at the next tick
                self.scheduler.modify_job("refill", next_run_time=clock.now())
            except Exception:  # the job is gone while shutting down
                pass

    # -- for tests and the CLI ---------------------------------------------------------

    def run_until_idle(self) -> dict:
        """Fire everything due by the clock's now, synchronously, without the scheduler (time-skipping tests)."""
        now = clock.now()
        attempted: set[int] = set()
        while True:
            claimed = [c for c in claim_timers(self.rt, self.worker, until=now, limit=self.batch)
                       if c[0] not in attempted]
            if not claimed:
                release_timers(self.rt, self.worker)
                return dict(self.outcomes)
            for timer_id, _due, case_id in claimed:
                attempted.add(timer_id)
                self._done(timer_id, case_id, None, self._fire_once(timer_id))
