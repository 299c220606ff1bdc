"""Case services: one function per use case, each one unit of work.

Every function that changes a case locks it (row lock on PostgreSQL, an
immediate transaction on SQLite), loads it, acts, records events and the
task projection, saves and commits, all in one transaction; on any exception
the transaction rolls back and nothing of the attempt remains. Callers get
plain dicts back, never SpiffWorkflow objects.

A task completion on SQLite is the one optimistic unit of work: it reads the
case and computes the step on a read snapshot, takes the write lock at its
first write, and checks that the case's version and last event are still the
ones it read (`Database.write(optimistic=True)`); if another writer moved the
case meanwhile it is redone once under the lock from the start
(`retried_when_moved`), so the result is the same as if it had locked first.

Given a `user` (an `engine.rules.access.Caller`), a service also applies the
access rules: cases outside the caller's scope do not exist for them, only a
candidate may complete a task (claiming it in the same transaction when it is
unclaimed), and the reporter's personal data is masked outside the rule.
"""
from __future__ import annotations

import functools
import re
import uuid
from datetime import datetime, timezone

from marshmallow import ValidationError
from sqlalchemy import bindparam, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from engine import clock
from engine.core.callbacks import keep_callback_source, with_callback_source
from engine.core.operation import CaseOperation, read_task_data
from engine.core.serializer import SERIALIZER_VERSION
from engine.errors import CaseNotFound, InvalidInput, StaleVersion, TaskClaimed, TaskNotFound, TaskNotReady
from engine.rules import access
from engine.rules.case_data import initial_data
from engine.rules.forms import validate as validate_form
from engine.rules.intake import IntakeSchema
from engine.rules.status import CaseStatus, TaskRowState
from engine.services import incidents
from engine.services.observe import observed
from engine.services.tracking import issue_tracking_code
from engine.services.views import case_summary, case_view, event_view, open_rows_by_case, task_view
from engine.store.client_models import CaseSource
from engine.store.db import retried_when_moved
from engine.store.models import Case, CaseEvent, CaseFact, CaseState, CaseTask
from engine.store.timer_models import CaseTimer

SYSTEM = "system"
CASE_NO = re.compile(r"^[0-9]{4}-[0-9]{6,12}$")


def _next_case_no(session, year: int) -> str:
    n = session.execute(text("INSERT INTO case_counter (year, last_no) VALUES (:y, 1) ON CONFLICT (year) "
                             "DO UPDATE SET last_no = case_counter.last_no + 1 RETURNING last_no"), {"y": year}).scalar_one()
    return f"{year}-{n:06d}"


def _lock_case(rt, session, *, case_no: str | None = None, case_id: int | None = None) -> Case:
    if case_no is not None and not CASE_NO.match(case_no):
        raise CaseNotFound(f"case {case_no} does not exist")
    stmt = select(Case).where(Case.case_no == case_no) if case_no is not None else select(Case).where(Case.id == case_id)
    case = session.scalar(stmt.with_for_update())
    if case is None:
        raise CaseNotFound(f"case {case_no or case_id} does not exist")
    return case


def find_case(rt, session, case_no: str, user=None) -> Case:
    """The case with this number, if it exists for the caller (CaseNotFound otherwise, never Forbidden)."""
    case = session.scalar(select(Case).where(Case.case_no == case_no)) \
        if isinstance(case_no, str) and CASE_NO.match(case_no) else None
    if case is None or (user is not None and not access.can_see(session, rt.tables, user, case)):
        raise CaseNotFound(f"case {case_no} does not exist")
    return case


# lock_task's statements, built once (their parameter is the task id): the step's hot path.
_TASK_ID = bindparam("task_id")
_LOCK_TASK_SQLITE = with_callback_source(
    select(CaseTask, Case, CaseState, CaseFact).join(Case, Case.id == CaseTask.case_id)
    .outerjoin(CaseState, CaseState.case_id == CaseTask.case_id)
    .outerjoin(CaseFact, CaseFact.case_id == CaseTask.case_id), CaseTask.case_id).where(CaseTask.id == _TASK_ID)
_LOCK_CASE_OF_TASK = select(Case).where(Case.id == select(CaseTask.case_id).where(CaseTask.id == _TASK_ID)
                                        .scalar_subquery()).with_for_update()
# What an optimistic step checks of its case when it takes the lock (engine.store.db.Database.expect_unchanged).
_CASE_MARK = f"SELECT version, last_seq FROM {Case.__tablename__} WHERE id = ?"
_TASK_WITH_STATE = with_callback_source(
    select(CaseTask, CaseState, CaseFact).outerjoin(CaseState, CaseState.case_id == CaseTask.case_id)
    .outerjoin(CaseFact, CaseFact.case_id == CaseTask.case_id), CaseTask.case_id).where(CaseTask.id == _TASK_ID)
# A firing's reads, built once with bound parameters (SQLAlchemy then neither rebuilds nor re-keys them):
# the case lock (SKIP LOCKED, a busy case is tried again shortly; a person's retry waits for it) ...
_FIRING_LOCK = {skip: select(Case).where(Case.id == bindparam("case_id")).with_for_update(skip_locked=skip)
                for skip in (True, False)}
# ... then, under it, the workflow state, the statistics timeline, whether the timer still waits and
# whether an open timer incident may need resolving, in one query ...
_FIRING_LOAD = select(
    CaseState, CaseFact,
    select(CaseTimer.id).where(CaseTimer.id == bindparam("timer_id")).exists(),
    incidents.has_open_timer_incident(bindparam("case_id")),
).select_from(Case).outerjoin(CaseState, CaseState.case_id == Case.id) \
    .outerjoin(CaseFact, CaseFact.case_id == Case.id).where(Case.id == bindparam("case_id"))
# ... and the case's open task rows.
_FIRING_TASKS = select(CaseTask).where(CaseTask.case_id == bindparam("case_id"),
                                       CaseTask.state == TaskRowState.READY.value)


def lock_task(rt, session, task_id) -> tuple[CaseTask, Case]:
    """The task row and its case, the case locked, both read after the lock, with the case's workflow state
    and its statistics timeline (engine.store.case_facts: the operation extends it).

    SQLite's write transaction holds the database from its first statement on
    (BEGIN IMMEDIATE): one query reads all three. In an optimistic write the
    case's version and sequence number are what the lock, once taken, checks
    (`_CASE_MARK`): every change to a case moves one of them (a step its
    version, a claim or any other event its sequence number). PostgreSQL locks the case row
    found through the task (one query), then reads the task row and the state
    in a second one, so both are as the previous holder of the lock left them.
    """
    key = {"task_id": _task_key(task_id)}
    if rt.db.is_sqlite:
        got = session.execute(_LOCK_TASK_SQLITE, key).first()
        if got is None:
            raise TaskNotFound(f"task {task_id} does not exist")
        row, case, state, fact = got[:4]
        rt.db.expect_unchanged(session, _CASE_MARK, (case.id,), (case.version, case.last_seq))
    else:
        case = session.scalar(_LOCK_CASE_OF_TASK, key)
        if case is None:
            raise TaskNotFound(f"task {task_id} does not exist")
        got = session.execute(_TASK_WITH_STATE, key).one()
        row, state, fact = got[:3]
    _hold(case, state, fact)
    keep_callback_source(case, got)
    return row, case


def _hold(case: Case, state, fact) -> None:
    """Give the case the state and timeline rows read with it (the operation loads and extends them)."""
    set_committed_value(case, "state_row", state)
    vars(case)["_fact_row"] = fact  # held by the case: the session keeps loaded rows only weakly


def _task_key(task_id) -> str:
    try:
        return str(uuid.UUID(str(task_id)))
    except ValueError:
        raise TaskNotFound(f"task {task_id} does not exist") from None


def find_task_row(session, task_id) -> CaseTask:
    """The task row with this id (TaskNotFound for an unknown id or one that is not a task id at all)."""
    row = session.get(CaseTask, _task_key(task_id))
    if row is None:
        raise TaskNotFound(f"task {task_id} does not exist")
    return row


def masked_for(user, case: Case) -> bool:
    return user is not None and not access.sees_personal_data(user, case)


def _commit_guard(fn):
    """A concurrent writer that slipped past the lock shows up as a stale version, never as lost data."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except StaleDataError as exc:
            raise StaleVersion("the case was changed by someone else; reload and try again") from exc

    return wrapper


def validate_intake(rt, intake: dict, now=None) -> tuple[dict, object]:
    """The cleaned intake form and, when it names no community, where the first-contact rule placed it.

    A form without a community (a hotline operator's, another system's) is
    placed by its grid code or coordinates (`engine.rules.grids`), else at the
    organisation's default desk; the placement is None when the form named its community.
    `reported_at` (when the dispute was reported, for cases entered from paper) may not be after `now`.
    """
    if isinstance(intake.get("reported_at"), datetime):  # already loaded by the API's schema
        intake = dict(intake, reported_at=intake["reported_at"].isoformat())
    grids = rt.tables.grids
    accepting = set(rt.tables.org.communities())
    if grids.default_desk:
        accepting.add(grids.default_desk)
    schema = IntakeSchema(categories=rt.tables.routes.keys(), now=now or clock.now(), communities=accepting or None)
    to_place = intake.get("community") is None
    if to_place:
        intake = {k: v for k, v in intake.items() if k != "community"}
    try:
        data = schema.load(intake, partial=("community",) if to_place else False)
    except ValidationError as exc:
        raise InvalidInput("the intake form has invalid fields", errors=exc.messages) from exc
    if not to_place:
        return data, None
    location = data["location"]
    placement = grids.place(location["grid"], location["lat"], location["lon"])
    if placement is None:
        raise InvalidInput("the case cannot be placed in a community", errors={"community": [
            "no grid of grids.toml holds the location and no default desk is configured: name the community"]})
    data["community"] = placement.community
    location["grid"] = placement.grid
    return data, placement


@observed("start_case")
@incidents.records_gaps
@_commit_guard
def start_case(rt, intake: dict, actor: str | None = None, *, user=None, source: dict | None = None) -> dict:
    """One-door acceptance: register the case, start its procedure, run to the first user task.

    The answer carries the case's `tracking_code`, the only time it is shown
    (engine.services.tracking sends it to the reporter too).

    Given a `user`, they must be allowed to register cases (`access.require_intake`);
    a form without a community is placed by the first-contact rule. Given a
    `source` (client_id, external_ref, token, media_url), the case is tied to the
    system it came from in the same transaction: a second case with the same
    (client_id, external_ref) is refused by the database (IntegrityError).
    """
    if user is not None:
        intake = dict(intake, community=access.require_intake(rt.tables, user, intake.get("community")))
        actor = user.username
    now = clock.now()
    data, placement = validate_intake(rt, intake, now)
    reported_at = (data.get("reported_at") or now).astimezone(timezone.utc)
    data["reported_at"] = reported_at.isoformat()  # the event payload is JSON
    route = rt.tables.route(data["category"])
    limits = rt.tables.time_limits["rework"]
    with rt.db.write() as session:
        definition = rt.definitions.latest(session, route.process)
        case = Case(
            case_no=_next_case_no(session, now.astimezone(rt.tz).year), definition_id=definition.id,
            title=data["title"], description=data["description"], category=data["category"],
            channel=data["channel"], reporter_name=data["reporter"]["name"],
            reporter_phone=data["reporter"]["phone"], reporter_id_no=data["reporter"]["id_no"],
            address=data["location"]["address"], lat=data["location"]["lat"], lon=data["location"]["lon"],
            grid=data["location"]["grid"], community_code=data["community"], status=CaseStatus.MEDIATING.value,
            level="community", current_unit=data["community"], serializer_version=SERIALIZER_VERSION,
            created_by=actor, created_at=now, reported_at=reported_at, updated_at=now, last_seq=0,
        )
        session.add(case)
        session.flush()
        if source is not None:
            session.add(CaseSource(case_id=case.id, placement=placement.by if placement else "given",
                                   created_at=now, **source))
            session.flush()
        # Only what the diagram's conditions and handlers read: the record (title, description,
        # reporter) stays in the case row, so the workflow state carries no personal data.
        initial = initial_data(case.category, case.channel, case.community_code, route.time_limit_class, limits)
        op = CaseOperation.new_case(rt, session, case, actor, definition)
        op.seed(initial)
        payload = {"definition": f"{definition.process_id}:{definition.version}", "intake": data, "data": initial}
        if placement is not None:
            payload["placement"] = placement.by
        op.event("case_started", payload=payload)
        op.run_engine()
        code = issue_tracking_code(op)
        op.finish()
        return dict(case_view(session, case, include_tasks=True, open_rows=op.open_task_rows()), tracking_code=code)


@observed("complete_task")
@incidents.records_gaps
@_commit_guard
@retried_when_moved
def complete_task(rt, task_id: str, data: dict, actor: str | None = None, expected_version: int | None = None,
                  *, user=None) -> dict:
    """Complete a READY user task with the submitted form; only a READY manual task can be completed.

    Given a `user`, they must be a candidate of the task and hold it, or it
    must be unclaimed: then they claim it in the same transaction. On SQLite
    the step is computed before the write lock is taken (an optimistic write,
    engine.store.db), and computed again under it if the case moved meanwhile.
    """
    with rt.db.write(optimistic=True) as session:
        row, case = lock_task(rt, session, task_id)
        if user is not None:
            if not access.can_see(session, rt.tables, user, case):
                raise TaskNotFound(f"task {task_id} does not exist")
            access.require_candidate(rt.tables, user, row)
            actor = user.username
        if expected_version is not None and case.version != expected_version:
            raise StaleVersion(f"case {case.case_no} is at version {case.version}, not {expected_version}",
                               current_version=case.version)
        definition = rt.definitions.get(session, case.definition_id)
        op = CaseOperation(rt, session, case, actor, definition)
        task = op.find_task(task_id)
        if task is None or row.state != TaskRowState.READY.value or not op.is_ready_manual(task):
            state = row.state if row.state != TaskRowState.READY.value else "not ready"
            raise TaskNotReady(f"task {task_id} ({row.bpmn_id}) is {state}; it can no longer be completed",
                               task_state=row.state)
        if user is not None:
            if row.assignee not in (None, user.username):
                raise TaskClaimed(f"task {task_id} is claimed by {row.assignee}", assignee=row.assignee)
            row.assignee = user.username
        meta = definition.tasks[task.task_spec.bpmn_id]
        cleaned = validate_form(list(meta.form), data)
        if "rating" in cleaned and cleaned["rating"]:
            case.rating = cleaned["rating"]
        op.complete_task(task, cleaned)
        op.run_engine()
        op.finish()
        return case_view(session, case, include_tasks=True, open_rows=op.open_task_rows(),
                         masked=masked_for(user, case))


def get_case(rt, case_no: str, user=None) -> dict:
    with rt.db.read() as session:
        case = find_case(rt, session, case_no, user)
        return case_view(session, case, include_tasks=True, masked=masked_for(user, case))


def task_detail(rt, session, row: CaseTask, case: Case, user=None) -> dict:
    """A task with its form fields and deadline; given a `user`, also the case summary and their actions."""
    definition = rt.definitions.get(session, case.definition_id)
    out = task_view(row, definition, case)
    meta = definition.tasks.get(row.bpmn_id)
    if meta is not None and meta.shows and row.state == TaskRowState.READY.value:
        # What the step shows its holder beside the form: e.g. the co-handlers' results to consolidate.
        out["shown"] = read_task_data(definition, case.state, row.id, meta.shows)
    if user is not None:
        ready = row.state == TaskRowState.READY.value
        out["overdue"] = out["light"] == "red"
        out["case"] = case_summary(case, open_rows_by_case(session, [case.id])[case.id],
                                   masked=masked_for(user, case))
        out["actions"] = access.task_actions(rt.tables, user, row) if ready else []
    return out


def get_task(rt, task_id: str, user=None) -> dict:
    with rt.db.read() as session:
        row = find_task_row(session, task_id)
        case = session.get(Case, row.case_id)
        if user is not None and not access.can_see(session, rt.tables, user, case):
            raise TaskNotFound(f"task {task_id} does not exist")
        return task_detail(rt, session, row, case, user)


def case_events(rt, case_no: str, user=None) -> list[dict]:
    with rt.db.read() as session:
        case = find_case(rt, session, case_no, user)
        masked = masked_for(user, case)
        rows = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.seq))
        return [event_view(e, masked=masked) for e in rows]


@observed("fire_timer")
def fire_timer(rt, timer_id: int, worker: str, *, retry_of: int | None = None) -> str:
    """Fire a due timer (and any other due timer of its case) in one unit of work.

    Returns "fired", "gone" (already fired, or cancelled by a completed task),
    "not_due" (also: waiting for its next try), "held" (an open incident holds
    it), "busy" (the case is locked by someone else: try again shortly) or
    "lost_lease" (another worker took the timer over). A firing that raises
    rolls back and, but for a database failure, is recorded on the timer for a
    later try or an incident (engine.services.incidents) before the error goes
    on. `retry_of`: a person retries this open incident now, whatever holds the
    timer; if the timer fires, the incident is resolved in the same transaction.
    """
    try:
        return _fire_timer(rt, timer_id, worker, retry_of)
    except SQLAlchemyError:
        raise  # the database failed, not the case: nothing can be recorded now, the worker tries again
    except Exception as exc:
        if retry_of is None:
            incidents.record_timer_failure(rt, timer_id, exc)
        raise


def _fire_timer(rt, timer_id: int, worker: str, retry_of: int | None) -> str:
    with rt.db.write() as session:
        timer = session.get(CaseTimer, timer_id)
        if timer is None:
            return "gone"
        now = clock.now()
        if timer.due_at > now:
            return "not_due"
        if retry_of is None:
            if timer.incident_id is not None:
                return "held"
            if timer.retry_at is not None and timer.retry_at > now:
                return "not_due"
            if timer.claimed_by not in (None, worker) and timer.lease_until and timer.lease_until > now:
                return "lost_lease"
        case = session.scalar(_FIRING_LOCK[retry_of is None], {"case_id": timer.case_id})
        if case is None:
            return "busy"
        # The case lock serialises firings: whoever held it before us may have fired this timer.
        still_there, held = _load_for_firing(session, case, timer_id)
        if not still_there:
            return "gone"
        definition = rt.definitions.get(session, case.definition_id)
        op = CaseOperation(rt, session, case, f"timer:{worker}", definition)
        fired = op.fire_due_timers()
        op.finish()
        if fired and retry_of is not None:
            incidents.resolve_incident(session, retry_of, worker, now, "retried: the timer fired")
        elif fired and held:
            incidents.resolve_replaced(session, case.id, worker, now)
        return "fired" if fired else "not_due"


def _load_for_firing(session, case: Case, timer_id: int) -> tuple[bool, bool]:
    """After the case lock, in one query: whether the timer still waits, whether an open timer incident
    of the case may need resolving, and the case's workflow state and statistics timeline; then in a
    second the case's open task rows (what the firing's handlers and deadlines look up), held by the
    case for the operation. Before, the operation read these one by one, six queries on a red light.
    """
    state, fact, still_there, held = session.execute(_FIRING_LOAD, {"case_id": case.id, "timer_id": timer_id}).one()
    if not still_there:
        return False, bool(held)
    _hold(case, state, fact)
    vars(case)["_open_rows"] = session.scalars(_FIRING_TASKS, {"case_id": case.id}).all()
    return True, bool(held)
