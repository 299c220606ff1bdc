"""Deadline timers: mirrored from each workflow into `case_timer`, claimed, and fired once.

After every engine operation `sync_timers` writes the case's waiting timers
(their due instants, read from the workflow) into the indexed timer table.
Timer workers `claim_timers` with a lease (a conditional update, `FOR UPDATE
SKIP LOCKED` on PostgreSQL) and call `fire_timer`, one unit of work: lock the
case (skipping it if someone else holds it), let SpiffWorkflow fire every due
timer of the case, save, and record each firing with its due and actual
instants. The row is deleted in the same transaction, so a timer fires exactly
once, whatever the number of workers; a lease that expires (a killed worker)
lets another worker take the timer over. A timer whose firing failed is
claimed again only once its `retry_at` has passed, and never while an open
incident holds it (engine.services.incidents).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update

from engine import clock
from engine.store.timer_models import CaseTimer

# How long a worker may hold a timer before another worker may take it over (a killed worker).
LEASE = timedelta(seconds=float(os.environ.get("TIMER_LEASE_SECONDS", "60")))


_TIMERS = CaseTimer.__table__
# The timers of a case that no longer wait (built once: written by most engine operations).
_DELETE_GONE = delete(_TIMERS).where(_TIMERS.c.case_id == bindparam("case_id"),
                                     _TIMERS.c.task_id.in_(bindparam("gone", expanding=True)))
_MOVE = update(_TIMERS).where(_TIMERS.c.case_id == bindparam("k_case_id"),
                              _TIMERS.c.task_id == bindparam("k_task_id")).values(due_at=bindparam("v_due_at"))


@dataclass(frozen=True)
class PendingTimer:
    task_id: str
    element: str
    kind: str
    due_at: datetime
    attached_task_id: str | None


def timer_due(task) -> datetime | None:
    value = task.internal_data.get("event_value")
    if value is None:
        return None
    if isinstance(value, dict):  # a cycle
        value = value.get("next")
    if not isinstance(value, str):
        return None
    return TimerEventDefinition.get_datetime(value)


def pending_timers(workflow) -> list[PendingTimer]:
    out = []
    for task in list(workflow.event_manager.tasks.values()):
        definition = getattr(task.task_spec, "event_definition", None)
        if not isinstance(definition, TimerEventDefinition):
            continue
        due = timer_due(task)
        if due is None:
            continue
        props = (getattr(task.task_spec, "extensions", None) or {}).get("properties", {})
        attached = None
        if task.parent is not None:
            for sibling in task.parent.children:
                if sibling is not task and getattr(sibling.task_spec, "manual", False):
                    attached = str(sibling.id)
        out.append(PendingTimer(str(task.id), task.task_spec.bpmn_id, props.get("timer_kind", "timer"),
                                due, attached))
    return out


def sync_timers(writer, case_id: int, before: dict, timers: list[PendingTimer], now: datetime) -> list[PendingTimer]:
    """Bring the case's rows in `case_timer` in step with the workflow; returns the new timers.

    `writer` executes the statements: a session, or an engine operation's batch (engine.store.batch).

    `before` maps the task ids of the timers that were waiting before the
    operation to their due instants: those rows exist (the same transaction
    wrote them), so the difference is known without reading the table.
    """
    wanted = {t.task_id: t for t in timers}
    gone = [tid for tid in before if tid not in wanted]
    # Core statements, the hot ones built once: no ORM bookkeeping on the hot path.
    if gone:
        writer.execute(_DELETE_GONE, {"case_id": case_id, "gone": gone})
    new = [t for tid, t in wanted.items() if tid not in before]
    if new:
        writer.execute(insert(_TIMERS), [
            {"case_id": case_id, "task_id": t.task_id, "element": t.element, "kind": t.kind,
             "attached_task_id": t.attached_task_id, "due_at": t.due_at, "created_at": now} for t in new])
    moved = [t for tid, t in wanted.items() if tid in before and before[tid] != t.due_at]
    if moved:
        writer.execute(_MOVE, [{"k_case_id": case_id, "k_task_id": t.task_id, "v_due_at": t.due_at} for t in moved])
    return new


def claim_timers(rt, worker: str, until: datetime, limit: int, overdue_before: datetime | None = None,
                 fresh_after: datetime | None = None,
                 per_instant: int | None = None) -> list[tuple[int, datetime, int]]:
    """Lease up to `limit` unclaimed (or lease-expired) timers due by `until`: (id, due, case id), earliest first.

    `overdue_before` restricts to the backlog (due before it); `fresh_after` to
    timers due after it, so a burst of old timers never delays fresh ones.
    `per_instant` takes at most that many of the claimable timers of each due
    instant: the first of every instant, however many timers a burst puts on one.
    """
    now = clock.now()
    window = [CaseTimer.due_at <= until]
    if overdue_before is not None:
        window.append(CaseTimer.due_at < overdue_before)
    if fresh_after is not None:
        window.append(CaseTimer.due_at >= fresh_after)
    claimable = [or_(CaseTimer.lease_until.is_(None), CaseTimer.lease_until < now),
                 # A timer whose firing failed waits for its next try; one an open incident holds, for a person.
                 or_(CaseTimer.retry_at.is_(None), CaseTimer.retry_at <= now), CaseTimer.incident_id.is_(None)]
    where = and_(*window, *claimable)
    if per_instant is not None:
        # Ranked among all the timers of the instant, leased ones included: the first `per_instant` of
        # an instant are taken once, not again at every refill while a burst drains.
        ranked = select(CaseTimer.id, func.row_number().over(partition_by=CaseTimer.due_at, order_by=CaseTimer.id)
                        .label("rank")).where(*window, CaseTimer.incident_id.is_(None)).subquery()
        where = and_(where, CaseTimer.id.in_(select(ranked.c.id).where(ranked.c.rank <= per_instant)))
    with rt.db.write() as session:
        ids = session.scalars(select(CaseTimer.id).where(where).order_by(CaseTimer.due_at, CaseTimer.id)
                              .limit(limit).with_for_update(skip_locked=True)).all()
        if not ids:
            return []
        rows = session.execute(
            update(CaseTimer).where(CaseTimer.id.in_(ids), or_(CaseTimer.lease_until.is_(None),
                                                               CaseTimer.lease_until < now))
            .values(claimed_by=worker, lease_until=max(until, now) + clock.get_clock().span(LEASE))
            .returning(CaseTimer.id, CaseTimer.due_at, CaseTimer.case_id)).all()
        return sorted(((r.id, r.due_at, r.case_id) for r in rows), key=lambda r: (r[1], r[0]))


def release_timers(rt, worker: str, ids: list[int] | None = None) -> int:
    """Give back the leases a worker holds (all of them, or the given timers)."""
    with rt.db.write() as session:
        stmt = update(CaseTimer).where(CaseTimer.claimed_by == worker)
        if ids is not None:
            stmt = stmt.where(CaseTimer.id.in_(ids))
        return session.execute(stmt.values(claimed_by=None, lease_until=None)).rowcount


def upcoming_timers(rt, limit: int = 20) -> list[dict]:
    from engine.store.models import Case

    with rt.db.read() as session:
        rows = session.execute(select(CaseTimer, Case.case_no).join(Case, Case.id == CaseTimer.case_id)
                               .order_by(CaseTimer.due_at).limit(limit)).all()
        return [{"due_at": t.due_at.isoformat(), "case_no": no, "kind": t.kind, "element": t.element,
                 "claimed_by": t.claimed_by, "tries": t.tries, "incident_id": t.incident_id,
                 "retry_at": t.retry_at.isoformat() if t.retry_at else None} for t, no in rows]
