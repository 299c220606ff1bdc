"""Tables of the seeds' other procedures: the stability-assessment gate, screening periods, the people's log.

`project_approval` marks a major decision's project approved, referencing the
stability risk assessment (稳评) that allowed it; `assessment_link` lets a
demolition or enterprise-restructuring dispute reference an assessment.
`screening_period` holds one row per (level, period) a screening round was
opened for: its unique key is what makes a cycle fire once per period;
`screening_finding` what each unit found in a round.
`people_log` holds the grid workers' people's-conditions log (民情日志).
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.base import Base, UTCDateTime


class ProjectApproval(Base):
    __tablename__ = "project_approval"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assessment_case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id"), unique=True)
    approved_by: Mapped[str] = mapped_column(String(100))
    approved_at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)


class AssessmentLink(Base):
    __tablename__ = "assessment_link"
    __table_args__ = (UniqueConstraint("case_id", "assessment_case_id", name="uq_assessment_link"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id"), index=True)
    assessment_case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id"), index=True)
    linked_by: Mapped[str] = mapped_column(String(100))
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ScreeningPeriod(Base):
    __tablename__ = "screening_period"
    __table_args__ = (UniqueConstraint("level", "period_start", name="uq_screening_period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    level: Mapped[str] = mapped_column(String(30))
    period_start: Mapped[date] = mapped_column(Date)
    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id"), index=True)
    units: Mapped[list] = mapped_column(JSON)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    opened_by: Mapped[str] = mapped_column(String(100))


class ScreeningFinding(Base):
    """What one unit found in one screening round: nothing new, a new case, or an update on a known risk."""

    __tablename__ = "screening_finding"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("screening_period.id"), index=True)
    unit_code: Mapped[str] = mapped_column(String(50), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("dispute_case.id"), index=True)
    note: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PeopleLogEntry(Base):
    __tablename__ = "people_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grid: Mapped[str] = mapped_column(String(50), index=True)
    community_code: Mapped[str] = mapped_column(String(50), index=True)
    worker: Mapped[str] = mapped_column(String(100), index=True)
    household: Mapped[str] = mapped_column(String(200))
    topic: Mapped[str] = mapped_column(String(50), index=True)
    notes: Mapped[str] = mapped_column(Text)
    follow_up: Mapped[str | None] = mapped_column(Text)
    visited_on: Mapped[date] = mapped_column(Date, index=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("dispute_case.id"), index=True)
