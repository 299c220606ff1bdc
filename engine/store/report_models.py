"""Tables of the statistics room: assessment rule versions and closed (frozen) monthly reports.

`assessment_rules` keeps every distinct content of `processes/assessment.toml` as an immutable,
numbered version (like process definitions), so a month is scored by the rules in force then.
`monthly_report` holds a month once it is closed: the figures and the assessment as computed at
closing, frozen, with a sha256 over them so that a changed row is detectable.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.base import Base, UTCDateTime


class AssessmentRules(Base):
    __tablename__ = "assessment_rules"
    __table_args__ = (UniqueConstraint("sha256", name="uq_assessment_rules_sha256"),)

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    sha256: Mapped[str] = mapped_column(String(64))
    effective_from: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    source: Mapped[str] = mapped_column(Text)
    deployed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deployed_by: Mapped[str] = mapped_column(String(100))


class MonthlyReport(Base):
    __tablename__ = "monthly_report"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # YYYY-MM
    rules_version: Mapped[int] = mapped_column(Integer)
    payload: Mapped[dict] = mapped_column(JSON)
    sha256: Mapped[str] = mapped_column(String(64))
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_by: Mapped[str] = mapped_column(String(100))
