"""Task services: the task lists, claim, unclaim and delegate.

A claim is an atomic conditional UPDATE of the task row (ready, and
unclaimed or already the caller's), taken under the case lock: of two
simultaneous claimers exactly one wins, the other gets `TaskClaimed` naming
the holder. Claims do not change the case's workflow, so they leave its
version alone; they are recorded in its event log (task_claimed,
task_unclaimed, task_delegated) with a sequence number from the case row.
Completing a task is `engine.services.cases.complete_task`.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, update

from engine import clock
from engine.errors import Forbidden, InvalidInput, TaskClaimed, TaskNotFound, TaskNotReady
from engine.rules import access
from engine.rules.deadlines import light_clause
from engine.rules.status import TaskRowState
from engine.services.cases import lock_task, masked_for, task_detail
from engine.services.org import caller_of
from engine.services.search import aware, page_args, page_view, paginate
from engine.services.views import case_summary, open_rows_by_case, task_view
from engine.store.ledger import append_events
from engine.store.models import Case, CaseTask, ProcessDefinition
from engine.store.org_models import AppUser

READY = TaskRowState.READY.value
SCOPES = ("mine", "candidate")


def _locked_task(rt, session, task_id, user) -> tuple[CaseTask, Case]:
    """The task row, fresh, with its case locked; TaskNotFound outside the caller's scope."""
    row, case = lock_task(rt, session, task_id)
    if not access.can_see(session, rt.tables, user, case):
        raise TaskNotFound(f"task {task_id} does not exist")
    return row, case


def _append_event(session, case: Case, row: CaseTask, type_: str, actor: str, payload: dict) -> None:
    # A core UPDATE, not the ORM: the seq moves on, the case's version (its workflow state) does not.
    table = Case.__table__
    seq = session.execute(update(table).where(table.c.id == case.id).values(last_seq=table.c.last_seq + 1)
                          .returning(table.c.last_seq)).scalar_one()
    version = session.scalar(select(ProcessDefinition.version).where(ProcessDefinition.id == case.definition_id))
    append_events(session, case, [dict(seq=seq, type=type_, at=clock.now(), actor=actor, task_id=row.id,
                                       element=row.bpmn_id, lane=row.lane, payload=payload,
                                       definition_version=version)])
    session.expire(case, ["last_seq"])


def _set_assignee(session, row: CaseTask, assignee: str | None, *conditions) -> bool:
    """The conditional UPDATE: True when this transaction changed the row."""
    result = session.execute(update(CaseTask).where(CaseTask.id == row.id, CaseTask.state == READY, *conditions)
                             .values(assignee=assignee).execution_options(synchronize_session=False))
    session.refresh(row)
    return result.rowcount == 1


def _refuse(row: CaseTask):
    if row.state != READY:
        return TaskNotReady(f"task {row.id} ({row.bpmn_id}) is {row.state}", task_state=row.state)
    return TaskClaimed(f"task {row.id} is claimed by {row.assignee}", assignee=row.assignee)


def claim_task(rt, task_id: str, user) -> dict:
    """Take a ready task as its assignee; claiming a task one already holds succeeds again."""
    with rt.db.write() as session:
        row, case = _locked_task(rt, session, task_id, user)
        access.require_candidate(rt.tables, user, row)
        held = row.assignee == user.username
        if not _set_assignee(session, row, user.username,
                             or_(CaseTask.assignee.is_(None), CaseTask.assignee == user.username)):
            raise _refuse(row)
        if not held:
            _append_event(session, case, row, "task_claimed", user.username, {"assignee": user.username})
        return task_detail(rt, session, row, case, user)


def unclaim_task(rt, task_id: str, user) -> dict:
    """Release a task: its holder may, and so may a delegator of its unit."""
    with rt.db.write() as session:
        row, case = _locked_task(rt, session, task_id, user)
        if not (access.is_candidate(rt.tables, user, row) or access.may_delegate(rt.tables, user, row)):
            raise Forbidden(f"{user.username} may not release task {row.id}")
        if row.state != READY:
            raise _refuse(row)
        holder = row.assignee
        if holder is None:
            return task_detail(rt, session, row, case, user)
        if not access.may_release(rt.tables, user, row):
            raise _refuse(row)
        if not _set_assignee(session, row, None, CaseTask.assignee == holder):
            raise _refuse(row)
        _append_event(session, case, row, "task_unclaimed", user.username, {"previous": holder})
        return task_detail(rt, session, row, case, user)


def delegate_task(rt, task_id: str, user, username: str) -> dict:
    """Hand a task to another candidate of its unit (a dispatcher or leader of that unit only)."""
    with rt.db.write() as session:
        row, case = _locked_task(rt, session, task_id, user)
        if not access.may_delegate(rt.tables, user, row):
            raise Forbidden(f"only a dispatcher or leader of {row.unit_code} may delegate its tasks")
        if row.state != READY:
            raise _refuse(row)
        target = session.scalar(select(AppUser).where(AppUser.username == username))
        if target is None or not target.active:
            raise InvalidInput(f"there is no active user {username!r}", errors={"username": ["no such active user"]})
        if not access.is_candidate(rt.tables, caller_of(session, rt.tables, target), row):
            raise InvalidInput(f"{username} is not a candidate of task {row.id}",
                               errors={"username": [f"is not a {row.role} of {row.unit_code}"]})
        previous = row.assignee
        if not _set_assignee(session, row, username):
            raise _refuse(row)
        if previous != username:
            _append_event(session, case, row, "task_delegated", user.username, {"from": previous, "to": username})
        return task_detail(rt, session, row, case, user)


def list_tasks(rt, user, scope: str = "candidate", filters: dict | None = None) -> dict:
    """Ready tasks: the caller's own (`mine`) or those they are a candidate for (`candidate`)."""
    filters = filters or {}
    if scope not in SCOPES:
        raise InvalidInput(f"unknown scope {scope!r}", errors={"scope": [f"must be one of: {', '.join(SCOPES)}"]})
    rows_of = [CaseTask.state == READY]  # conditions on the task rows alone
    if scope == "mine":
        rows_of.append(CaseTask.assignee == user.username)
    else:
        rows_of.append(access.candidate_clause(rt.tables, user))
    if filters.get("lane"):
        rows_of.append(CaseTask.lane == filters["lane"])
    due_before: datetime | None = aware(filters.get("due_before"), rt.tz, "due_before")
    if due_before is not None:
        rows_of.append(CaseTask.due_at < due_before)
    now = clock.now()
    if filters.get("light"):
        rows_of.append(light_clause(filters["light"], now))
    if filters.get("overdue") is not None:
        red = light_clause("red", now)
        rows_of.append(red if filters["overdue"] else ~red)
    stmt = select(CaseTask, Case).join(Case, Case.id == CaseTask.case_id).where(*rows_of)
    # Every task row has its case: unless a filter reads the case, the task rows alone are counted (off
    # the queue index), not the join (a department's 7,500 candidate tasks at 1,000,000 cases: 18 -> 1 ms).
    counted = select(CaseTask.id).where(*rows_of)
    if filters.get("case"):
        stmt, counted = stmt.where(Case.case_no == filters["case"]), None
    # The most urgent first, tasks without a deadline last: the queue index's order (ix_case_task_queue).
    stmt = stmt.order_by(CaseTask.due_at.asc().nulls_last(), CaseTask.created_at, CaseTask.case_id, CaseTask.id)
    page, per_page = page_args(filters)
    with rt.db.read() as session:
        total, rows = paginate(session, stmt, page, per_page, counted)
        open_rows = open_rows_by_case(session, {case.id for _row, case in rows})
        items = []
        for row, case in rows:
            item = task_view(row, None, case)
            item["overdue"] = item["light"] == "red"
            item["case"] = case_summary(case, open_rows[case.id], masked=masked_for(user, case))
            items.append(item)
    return page_view(items, total, page, per_page)
