"""Database tables, as plain SQLAlchemy (no Flask here).

The BPMN workflow is the case's process state; these tables hold what must be
queried without loading it: the case record, a projection of its open user
tasks, the units that took part in each case (the scope index of the case
lists), the append-only event log, the outbox of notifications, and the
immutable definition versions. The workflow state itself lives in its own
table (`case_state`), so the case row the lists scan stays small. Alembic
migrations in `migrations/` build them.
"""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    literal_column,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.store.base import Base, UTCDateTime


class ProcessDefinition(Base):
    """One immutable version of one process: the BPMN source and its parsed spec."""

    __tablename__ = "process_definition"
    __table_args__ = (
        UniqueConstraint("process_id", "version", name="uq_process_definition_version"),
        UniqueConstraint("process_id", "sha256", name="uq_process_definition_sha256"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    process_id: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    source_name: Mapped[str] = mapped_column(String(255))
    bpmn_xml: Mapped[str] = mapped_column(Text)
    spec_json: Mapped[str] = mapped_column(Text)
    serializer_version: Mapped[str] = mapped_column(String(40))
    deployed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deployed_by: Mapped[str] = mapped_column(String(100))
    # The processes its call activities call (nested ones too), each at the version this one embeds:
    # {process_id: version}. A case of this version runs exactly those versions (it is pinned to them).
    calls: Mapped[dict | None] = mapped_column(JSON)


class Case(Base):
    """A dispute: its record, and its workflow state (`state`, compressed, spec-free)."""

    __tablename__ = "dispute_case"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_no: Mapped[str] = mapped_column(String(20), unique=True)
    definition_id: Mapped[int] = mapped_column(ForeignKey("process_definition.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(50), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    reporter_name: Mapped[str] = mapped_column(String(100))
    reporter_phone: Mapped[str] = mapped_column(String(30))
    reporter_id_no: Mapped[str | None] = mapped_column(String(30))
    address: Mapped[str] = mapped_column(String(300))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    grid: Mapped[str | None] = mapped_column(String(50))
    community_code: Mapped[str] = mapped_column(String(50), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    level: Mapped[str] = mapped_column(String(30))
    current_unit: Mapped[str | None] = mapped_column(String(50), index=True)
    routed_unit: Mapped[str | None] = mapped_column(String(50), index=True)
    time_limit_class: Mapped[str | None] = mapped_column(String(40))
    # Handling as the seeds run it (handlers/handling.py): the unit that signed for the case and leads
    # it (首办单位), how often it was transferred after a refusal, and the co-handling units it brought in.
    first_handling_unit: Mapped[str | None] = mapped_column(String(50), index=True)
    transfers: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    co_units: Mapped[list | None] = mapped_column(JSON)
    reply_text: Mapped[str | None] = mapped_column(Text)
    reply_unit: Mapped[str | None] = mapped_column(String(50))
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rating: Mapped[str | None] = mapped_column(String(30))
    serializer_version: Mapped[str] = mapped_column(String(40))
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # When the dispute was reported (a case entered from a paper record was reported before its intake).
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The deadline of its most urgent open step (the earliest due_at of its ready task rows; None when
    # none has one, and once closed), kept by the engine in every operation (engine.core.operation): the
    # overdue filter of the case lists is one indexed range on it, however few cases are late.
    open_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    # The head of the case's audit chain as the last engine operation left it (engine.store.ledger): its
    # hash and seq. Trusted only while chain_seq == last_seq; otherwise the chain is read from the log.
    chain_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    chain_seq: Mapped[int | None] = mapped_column(Integer)
    # The workflow state, in its own table (loaded on first use: lists never read it).
    state_row: Mapped["CaseState | None"] = relationship(lazy="select", uselist=False, back_populates="case")

    __mapper_args__ = {"version_id_col": version}

    @property
    def state(self) -> bytes | None:
        """The stored workflow state (compressed, spec-free; engine.core.serializer)."""
        return self.state_row.state if self.state_row is not None else None

    @state.setter
    def state(self, value: bytes) -> None:
        if self.state_row is None:
            self.state_row = CaseState(state=value)
        else:
            self.state_row.state = value


class CaseState(Base):
    """A case's workflow state, out of the case row: the row every list scans stays ~300 bytes."""

    __tablename__ = "case_state"

    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id"), primary_key=True, autoincrement=False)
    state: Mapped[bytes] = mapped_column(LargeBinary)
    case: Mapped[Case] = relationship(back_populates="state_row")


class CaseUnit(Base):
    """A unit that took part in a case: what the case lists' scopes look up (engine.rules.access).

    One row per (case, unit): the accepting community (`community` true), and every unit
    the case was routed to, held by, or gave a task to. Written by the engine in the
    operation that brings the unit in, never deleted; `created_at` is the case's, so a
    scope's newest cases are read off the index in order.
    """

    __tablename__ = "case_unit"
    __table_args__ = (Index("ix_case_unit_scope", "unit_code", "created_at", "case_id"),)

    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id"), primary_key=True, autoincrement=False)
    unit_code: Mapped[str] = mapped_column(String(50), primary_key=True)
    community: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CaseFact(Base):
    """One row per case: its statistics timeline (what engine.store.case_facts keeps and documents)."""

    __tablename__ = "case_fact"

    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id"), primary_key=True, autoincrement=False)
    timeline: Mapped[dict] = mapped_column(JSON)


class CaseTask(Base):
    """A user task of a case as the task lists see it (a projection kept in step with the workflow)."""

    __tablename__ = "case_task"
    # A queue (ready rows of a unit and role) in the task lists' order: the most urgent first (migration d_h15queue).
    __table_args__ = (Index("ix_case_task_queue", "state", "unit_code", "role", "due_at", "created_at", "case_id", "id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id"), index=True)
    bpmn_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    lane: Mapped[str | None] = mapped_column(String(100))
    role: Mapped[str | None] = mapped_column(String(30))
    unit_code: Mapped[str | None] = mapped_column(String(50))
    state: Mapped[str] = mapped_column(String(12))
    assignee: Mapped[str | None] = mapped_column(String(100), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_by: Mapped[str | None] = mapped_column(String(100))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    warn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # True when the deadline counts days of a year with no published holiday arrangement (weekends only).
    due_estimated: Mapped[bool | None] = mapped_column(Boolean)


class CaseEvent(Base):
    """Append-only, ordered per case: what happened, who did it, when, with which data.

    Never updated or deleted by the application; on PostgreSQL a trigger refuses both.
    """

    __tablename__ = "case_event"
    __table_args__ = (UniqueConstraint("case_id", "seq", name="uq_case_event_seq"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id"))
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(30))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(100))
    task_id: Mapped[str | None] = mapped_column(String(36))
    element: Mapped[str | None] = mapped_column(String(100))
    lane: Mapped[str | None] = mapped_column(String(100))
    payload: Mapped[dict | None] = mapped_column(JSON)
    definition_version: Mapped[int] = mapped_column(Integer)
    # The audit chain (engine.store.ledger): the first seq of the operation that wrote the event, the
    # workflow's state digest after it, and sha256 over the previous hash and this event.
    op_seq: Mapped[int | None] = mapped_column(Integer)
    state_digest: Mapped[bytes | None] = mapped_column(LargeBinary)
    hash: Mapped[bytes | None] = mapped_column(LargeBinary)


class Outbox(Base):
    """A notification to deliver, written in the case's transaction and delivered by the dispatcher.

    `kind` names its template (processes/notifications.toml) and `params` fill it; `message` is
    the text rendered when it was written. `idempotency_key` is sent to the provider with every
    attempt, so a resend after a crash is recognisable as the same message. The lifecycle
    (`status`) is engine.store.outbox_state; `lease_*` hold a dispatcher's claim.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("dispute_case.id"), index=True)
    channel: Mapped[str] = mapped_column(String(10))
    recipient_kind: Mapped[str] = mapped_column(String(20))
    recipient: Mapped[str] = mapped_column(String(100))
    message: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="pending", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(30), default="notice")
    params: Mapped[dict | None] = mapped_column(JSON)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True, default=lambda: uuid.uuid4().hex)
    address: Mapped[str | None] = mapped_column(String(300))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_ref: Mapped[str | None] = mapped_column(String(100))


class CaseCounter(Base):
    """The last case number issued per year (case numbers look like 2026-000123)."""

    __tablename__ = "case_counter"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_no: Mapped[int] = mapped_column(Integer)



# Indexes the statistics select on (engine/services/statistics.py; migration d_h11), so that a
# period's figures read that period's rows instead of scanning whole tables at city scale: steps
# that ended or turned yellow in the period (`due_at` has its own index), handling events of the
# period (time first: with the type first, SQLite's planner, which keeps no statistics, would read
# a case's log through it instead of the log's (case_id, seq) key), and the backlog — cases still
# open at, or closed only after, an instant — from the index alone.
STATISTICS_INDEXES = (
    Index("ix_case_task_ended_at", CaseTask.ended_at),
    Index("ix_case_task_warn_at", CaseTask.warn_at),
    Index("ix_case_event_at_type", CaseEvent.at, CaseEvent.type),
    Index("ix_dispute_case_closed_at", Case.closed_at, Case.created_at),
)

# The backlog at an instant — cases accepted before it and not closed by it — is a stabbing query no
# b-tree answers without reading every case closed later; on PostgreSQL a GiST index over each case's
# open span answers it directly (statistics.load_facts; migration d_h11f). SQLite reads the b-tree.
OPEN_SPAN = func.tstzrange(Case.created_at, Case.closed_at, literal_column("'(]'"))
Index("ix_dispute_case_open_span", OPEN_SPAN, postgresql_using="gist").ddl_if(dialect="postgresql")
