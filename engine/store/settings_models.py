"""Settings of the instance itself, one row per key (what this database is for, among others).

`instance_setting` holds facts about the installation that must travel with
its data rather than with a process's environment: a database created by
`flask demo` or `flask training init` says so here (`purpose`), and only such
an instance may run on a sped-up clock.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.base import Base, UTCDateTime


class InstanceSetting(Base):
    __tablename__ = "instance_setting"

    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime)
    set_by: Mapped[str] = mapped_column(String(100))
