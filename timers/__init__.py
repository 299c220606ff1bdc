"""The timer service: APScheduler firing the BPMN boundary timers of cases.

The database is the truth (`case_timer`, written by the engine after every
operation); APScheduler jobs are a cache of the timers due soon, rebuilt from
the table at start-up and refilled every second. A fired job only calls the
engine's `fire_timer`. Embedded mode runs a BackgroundScheduler inside the
API server; `flask timers run` runs a standalone worker for scale-out. Any
number of workers may run against PostgreSQL: timers are leased with
`FOR UPDATE SKIP LOCKED` and fired under the case lock, so each fires once.
"""
from timers.service import TimerService

__all__ = ["TimerService"]
