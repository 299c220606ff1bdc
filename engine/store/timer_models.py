"""Tables of the deadline machinery: pending timers and supervision records (督办).

`case_timer` mirrors the timers waiting in each case's workflow (written after
every engine operation), so the timer service finds due timers with one
indexed query and never loads a case to learn that its timer is not due. A
row is claimed by a timer worker with a lease (`claimed_by`, `lease_until`)
and deleted in the same transaction that fires it. A firing that failed is
recorded on the row (`tries`, `retry_at`, and `incident_id` once it is held).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.base import Base, UTCDateTime


class CaseTimer(Base):
    __tablename__ = "case_timer"
    __table_args__ = (
        UniqueConstraint("case_id", "task_id", name="uq_case_timer_task"),
        Index("ix_case_timer_due", "due_at"),
        # Never reuse the id of a fired timer: a worker still holding the old id must find nothing.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id"), index=True)
    task_id: Mapped[str] = mapped_column(String(36))
    element: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    attached_task_id: Mapped[str | None] = mapped_column(String(36))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Failed firings (engine.services.incidents): how many so far, when the next may be tried, and the open
    # incident holding the timer after the last try (workers leave a held timer alone; a retry fires it).
    tries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    incident_id: Mapped[int | None] = mapped_column(Integer)


class Supervision(Base):
    """A supervision record (督办): opened when a step turns red, closed by a supervisor once done."""

    __tablename__ = "supervision"
    # The supervision list: open (or closed) records, most overdue first, read off the index in order.
    __table_args__ = (Index("ix_supervision_queue", "status", "due_at", "id"), Index("ix_supervision_due", "due_at", "id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id"), index=True)
    task_id: Mapped[str | None] = mapped_column(String(36))
    step: Mapped[str] = mapped_column(String(100))
    step_name: Mapped[str] = mapped_column(String(200))
    unit_code: Mapped[str | None] = mapped_column(String(50), index=True)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(10), index=True)  # open | closed
    note: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(100))


# The supervision records opened or closed in a period (the statistics; migration d_h11).
STATISTICS_INDEXES = (
    Index("ix_supervision_opened_at", Supervision.opened_at),
    Index("ix_supervision_closed_at", Supervision.closed_at),
)
