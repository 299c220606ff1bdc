"""The timer workers alive now: one row per running worker, its heartbeat refreshed every few seconds.

A timer worker (`flask timers run`, or the one `flask serve` starts) writes
its row when it starts, touches `heartbeat_at` while it runs and deletes the
row when it stops. `/readyz` reads the latest heartbeat: an instance whose
timers nobody fires is not ready, even when every API worker answers.
Times are on the application's clock (engine.clock), like every other.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.base import Base, UTCDateTime


class TimerWorker(Base):
    __tablename__ = "timer_worker"

    worker: Mapped[str] = mapped_column(String(100), primary_key=True)
    host: Mapped[str] = mapped_column(String(100))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
