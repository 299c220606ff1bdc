"""The citizens' tracking codes: only a hash of each code, never the code itself.

A tracking code is a secret the citizen holds (shown once at intake and sent
to them); whoever has it may see the public view of one case. Like API
tokens, the code is stored as its sha256 digest, which is the primary key,
so a look-up is one indexed equality and the table never reveals a code.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.base import Base, UTCDateTime


class TrackingCode(Base):
    __tablename__ = "tracking_code"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
