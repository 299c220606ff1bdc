"""What an operator asks of a running instance: is it ready to serve, and how much work is waiting.

`readiness(rt, heads, max_age)` runs every check of `/readyz`, each on its
own so one failure never hides another:
- `database`: it answers `SELECT 1`;
- `schema`: the revision stored in `alembic_version` is the migrations' head;
- `definitions`: every process named in routing.toml is deployed;
- `timers`: a timer worker beat within `max_age` seconds (engine.services.heartbeat).
`backlog(rt)` reads, at the moment of a scrape, the figures `/metrics` shows
beside its counters: timers pending, due and the lag of the oldest due one,
the outbox messages waiting, the incidents open.
"""
from __future__ import annotations

from sqlalchemy import func, select, text

from engine import clock
from engine.runtime import database_health
from engine.services.heartbeat import timer_service_state
from engine.store.incident_models import Incident
from engine.store.models import Outbox, ProcessDefinition
from engine.store.outbox_state import CLAIMABLE, MessageState
from engine.store.timer_models import CaseTimer


def _check(fn) -> dict:
    try:
        return fn()
    except Exception as exc:  # a readiness check reports its failure, it never raises
        first = (str(getattr(exc, "reason", None) or exc).strip().splitlines() or [""])[0]
        return {"ok": False, "error": f"{type(exc).__name__}: {first}"[:300]}


def readiness(rt, heads: set[str], max_age: float) -> dict:
    def database():
        database_health(rt)
        return {"ok": True, "database": rt.db.engine.dialect.name}

    def schema():
        with rt.db.read() as session:
            current = set(session.scalars(text("SELECT version_num FROM alembic_version")))
        return {"ok": current == heads, "current": sorted(current), "head": sorted(heads)}

    def definitions():
        wanted = {route.process for route in rt.tables.routes.values()}
        with rt.db.read() as session:
            deployed = set(session.scalars(select(ProcessDefinition.process_id).distinct()))
        missing = sorted(wanted - deployed)
        return {"ok": not missing, "deployed": len(deployed), "missing": missing}

    def timers():
        state = timer_service_state(rt, max_age)
        return {"ok": state["workers"] > 0, "max_age_seconds": max_age, **state}

    checks = {name: _check(fn) for name, fn in
              (("database", database), ("schema", schema), ("definitions", definitions), ("timers", timers))}
    failed = [name for name, c in checks.items() if not c["ok"]]
    return {"status": "ready" if not failed else "not_ready", "failed": failed, "checks": checks}


def backlog(rt) -> dict:
    now = clock.now()
    waiting = (*CLAIMABLE, MessageState.SENDING)
    with rt.db.read() as session:
        pending = session.scalar(select(func.count()).select_from(CaseTimer))
        due, oldest = session.execute(select(func.count(), func.min(CaseTimer.due_at))
                                      .where(CaseTimer.due_at <= now, CaseTimer.incident_id.is_(None))).one()
        outbox = session.scalar(select(func.count()).select_from(Outbox)
                                .where(Outbox.status.in_([s.value for s in waiting])))
        incidents = session.scalar(select(func.count()).select_from(Incident).where(Incident.status == "open"))
    return {"timers_pending": pending, "timers_due": due,
            "timer_lag_seconds": max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0,
            "outbox_backlog": outbox, "incidents_open": incidents}
