"""The heartbeat of timer workers, and what `/readyz` and `/metrics` read of the timer service.

`beat` upserts the worker's row (engine.store.worker_models) with the
clock's now; `forget` deletes it when the worker stops; `timer_service_state`
says how recent the latest heartbeat is and how many workers beat within
`max_age`. One short write transaction each, off any case lock.
"""
from __future__ import annotations

import os
import socket
from datetime import timedelta

from sqlalchemy import delete, func, select

from engine import clock
from engine.store.worker_models import TimerWorker


def beat(rt, worker: str) -> None:
    now = clock.now()
    with rt.db.write() as session:
        row = session.get(TimerWorker, worker)
        if row is None:
            session.add(TimerWorker(worker=worker[:100], host=socket.gethostname()[:100], pid=os.getpid(),
                                    started_at=now, heartbeat_at=now))
        else:
            row.heartbeat_at = now


def forget(rt, worker: str) -> None:
    with rt.db.write() as session:
        session.execute(delete(TimerWorker).where(TimerWorker.worker == worker))


def timer_service_state(rt, max_age: float) -> dict:
    """{"workers": beating within max_age, "latest": ISO instant or None, "age_seconds": float or None}."""
    now = clock.now()
    with rt.db.read() as session:
        latest = session.scalar(select(func.max(TimerWorker.heartbeat_at)))
        alive = session.scalar(select(func.count()).select_from(TimerWorker)
                               .where(TimerWorker.heartbeat_at >= now - timedelta(seconds=max_age)))
    age = None if latest is None else (now - latest).total_seconds()
    return {"workers": alive, "latest": latest.isoformat() if latest else None, "age_seconds": age}
