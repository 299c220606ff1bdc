"""The engine's collaborators, wired once by the app factory (or a test, or a benchmark).

Nothing here is built at import time: `build_runtime` takes the database
engine, the processes directory and the handler registry and returns a
`Runtime` that every service function receives as its first argument.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.engine import Engine

from engine.core.definitions import Definitions
from engine.core.workflow_cache import WorkflowCache
from engine.rules.calendar import WorkingCalendar, load_calendar, sandbox_functions
from engine.rules.deadlines import deadline_functions
from engine.rules.screening import screening_functions
from engine.rules.tables import Tables, load_tables
from engine.services.org_cache import OrgCache
from engine.store.db import Database


@dataclass
class Runtime:
    db: Database
    definitions: Definitions
    tables: Tables
    handlers: dict
    calendar: WorkingCalendar
    functions: dict
    processes_dir: Path
    tz: ZoneInfo
    org_cache: object = None  # engine.services.org_cache.OrgCache: the organisation snapshot, kept fresh
    observers: list = field(default_factory=list)  # (operation, seconds, outcome) callables: engine.services.observe
    # The workflows this process's operations last saved (engine.core.workflow_cache).
    workflows: WorkflowCache = field(default_factory=WorkflowCache)


def build_runtime(engine: Engine, processes_dir: Path, handlers: dict, tz: str = "Asia/Shanghai",
                  **database_options) -> Runtime:
    """`database_options`: `busy_timeout` and `retry_after` of `engine.store.db.Database`."""
    processes_dir = Path(processes_dir)
    tables = load_tables(processes_dir)
    calendar = load_calendar(processes_dir, tz)
    functions = {**sandbox_functions(calendar), **deadline_functions(calendar, tables.time_limits),
                 **screening_functions(tables.screening, calendar)}
    definitions = Definitions(tables, handlers.keys(), functions.keys(), functions)
    db = Database(engine, **database_options)
    org_cache = OrgCache(tables)
    db.on_begin.append(org_cache.refresh)
    return Runtime(
        db=db, definitions=definitions, tables=tables, handlers=dict(handlers),
        calendar=calendar, functions=functions, processes_dir=processes_dir, tz=ZoneInfo(tz), org_cache=org_cache,
    )


def database_health(rt: Runtime) -> dict:
    """The health check: the database answers a trivial query."""
    with rt.db.read() as session:
        session.execute(text("SELECT 1"))
    return {"status": "ok", "database": rt.db.engine.dialect.name}
