"""One operation on one case: the unit of work behind every service function.

`CaseOperation` is used inside a write transaction that already holds the
case lock. It restores the workflow from the stored state and the cached
spec, installs the sandboxed script engine (never serialized, so set after
every load), lets the caller act, runs engine steps, and then records what
changed: events for every task that became ready, completed or was cancelled
(predicted MAYBE/LIKELY/FUTURE states are never events), the task-list
projection, the case status and level, and the new state. If anything raises,
the transaction rolls back and the in-memory workflow is simply dropped.
"""
from __future__ import annotations

import json
import uuid

from SpiffWorkflow import TaskState
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.exceptions import SpiffWorkflowException, WorkflowException
from SpiffWorkflow.task import Task
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy import bindparam, insert, select

from engine import clock
from engine.core.callbacks import enqueue_status_callback
from engine.core.compaction import compact
from engine.core.sandbox import SandboxEnvironment, SandboxScriptEngine, SandboxViolation
from engine.core.serializer import SERIALIZER_VERSION, dump_workflow, load_workflow
from engine.core.timers import pending_timers, sync_timers, timer_due
from engine.errors import CaseError, DefinitionError, EngineError, HandlerFailed, OrganisationGap
from engine.rules.notifications import load_templates
from engine.rules.status import CaseStatus, TaskRowState, check_task_transition
from engine.store import case_facts
from engine.store.batch import WriteBatch
from engine.store.ledger import append_events, state_digest
from engine.store.models import Case, CaseFact, CaseState, CaseTask, CaseUnit, Outbox
from engine.store.org_models import AppUser, UserRole
from engine.store.procedure_models import ScreeningPeriod
from engine.store.timer_models import Supervision

# The rows every operation writes, sent with its events and timers in one batch (engine.store.batch).
BATCHED = (Case, CaseState, CaseFact, CaseTask)
RECORDED = TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.COMPLETED \
    | TaskState.ERROR | TaskState.CANCELLED


# The active users of a unit (and of those holding given roles): built once, read by handlers of most steps.
_UNIT_USERS = select(AppUser.username).where(AppUser.unit_code == bindparam("unit"), AppUser.active.is_(True)) \
    .order_by(AppUser.username)
_UNIT_USERS_IN_ROLES = _UNIT_USERS.where(AppUser.id.in_(
    select(UserRole.user_id).where(UserRole.role.in_(bindparam("roles", expanding=True)))))
# A red light's supervision record, whose id its handler needs at once: one INSERT … RETURNING (the ORM's
# flush for it walked the whole session first, a twentieth of a timer firing).
_OPEN_SUPERVISION = insert(Supervision.__table__).returning(Supervision.__table__.c.id)


class HandlerContext:
    """What a service-task handler may touch: the case record, the tables, the clock, the outbox."""

    def __init__(self, op: "CaseOperation"):
        self._op = op
        self.case = op.case
        self.tables = op.rt.tables
        self.calendar = op.rt.calendar
        self.now = op.now

    def trigger(self) -> dict:
        """The step whose boundary timer led to the running service task (yellow and red lights)."""
        task = self._op.script_engine.current_task
        while task is not None and not isinstance(getattr(task.task_spec, "event_definition", None),
                                                  TimerEventDefinition):
            task = task.parent
        if task is None:
            return {}
        step = None
        for sibling in task.parent.children if task.parent is not None else []:
            if sibling is not task and getattr(sibling.task_spec, "manual", False):
                step = sibling
        props = (getattr(task.task_spec, "extensions", None) or {}).get("properties", {})
        out = {"timer": task.task_spec.bpmn_id, "kind": props.get("timer_kind"),
               "due_at": timer_due(task)}
        if step is not None:
            row = self._op._task_row(str(step.id))
            out.update(step_task_id=str(step.id), step=step.task_spec.bpmn_id,
                       step_name=step.task_spec.bpmn_name or step.task_spec.bpmn_id,
                       unit=row.unit_code if row else None, assignee=row.assignee if row else None)
        return out

    def open_supervision(self, trigger: dict) -> int:
        return self._op.session.execute(_OPEN_SUPERVISION, {
            "case_id": self.case.id, "task_id": trigger.get("step_task_id"),
            "step": trigger.get("step") or trigger.get("timer") or "?", "step_name": trigger.get("step_name") or "",
            "unit_code": trigger.get("unit"), "due_at": trigger.get("due_at"), "opened_at": self.now,
            "status": "open"}).scalar_one()

    def claim_screening_period(self, level: str, period_start, units: list[str]) -> int | None:
        """Record that `level`'s round for the period starting `period_start` opens now; None if one exists.

        The unique (level, period_start) key makes this hold across workers and restarts: a second
        claim in another transaction fails on commit and that firing is retried, finding the row.
        """
        session = self._op.session
        found = session.scalar(select(ScreeningPeriod.id).where(ScreeningPeriod.level == level,
                                                                ScreeningPeriod.period_start == period_start))
        if found is not None:
            return None
        row = ScreeningPeriod(level=level, period_start=period_start, case_id=self.case.id, units=list(units),
                              opened_at=self.now, opened_by=self._op.actor)
        session.add(row)
        session.flush()
        return row.id

    def supervision_centre(self) -> str | None:
        return self.tables.fixed_units.get("supervision_centre")

    def routing_desk(self) -> str | None:
        """The unit that re-routes a case a unit refused (lanes.toml [units] routing_desk; the centre by default)."""
        return self.tables.fixed_units.get("routing_desk") or self.supervision_centre()

    def unit_users(self, unit: str | None, role: str | None = "handler") -> list[str]:
        """The active users of `unit` who may hold a task of `role` (its own holders and those acting for it)."""
        if not unit:
            return []
        if not role:
            return list(self._op.session.scalars(_UNIT_USERS, {"unit": unit}))
        roles = sorted(self.tables.holders_of(role))
        return list(self._op.session.scalars(_UNIT_USERS_IN_ROLES, {"unit": unit, "roles": roles}))

    def is_unit_user(self, username: str, unit: str | None, role: str | None = "handler") -> bool:
        return username in self.unit_users(unit, role)

    def record(self, type_: str, payload: dict) -> None:
        """Append an event of the running service task to the case's log (e.g. a refusal, a transfer)."""
        self._op.event(type_, task=self._op.script_engine.current_task, payload=payload)

    def notify(self, recipient_kind: str, recipient: str, message: str | None = None, channel: str | None = None,
               *, kind: str = "notice", params: dict | None = None) -> None:
        """Queue a message of `kind` (its template filled with `params`; or free `message` text).

        The channel is the recipient's preferred one unless `channel` is given; the outbox
        dispatcher (engine.services.outbox) delivers it after this transaction commits.
        """
        params = {"text": message} if message is not None and params is None else dict(params or {})
        rendered = load_templates(self._op.rt.processes_dir).render(kind, params)
        self._op.batch.execute(insert(Outbox.__table__), [dict(
            case_id=self.case.id, channel=channel or "auto", recipient_kind=recipient_kind, recipient=recipient or "",
            message=rendered.text, kind=kind, params=rendered.params, status="pending", created_at=self.now)])


class _HandlerError(Exception):
    def __init__(self, operation: str, cause: Exception):
        super().__init__(f"handler {operation!r} failed: {cause}")
        self.operation = operation
        self.cause = cause


def _definition_error(exc: WorkflowTaskException, element: str) -> DefinitionError:
    """A script or expression of the procedure failed: refused by the sandbox, or an error of its own."""
    original, seen = exc.__cause__ or exc.__context__, 0
    while original is not None and not isinstance(original, SandboxViolation) and seen < 10:
        original, seen = original.__cause__ or original.__context__, seen + 1
    if isinstance(original, SandboxViolation):
        line = getattr(exc, "line_number", None)
        reason = (f"line {line}: " if line else "") + "refused by the sandbox: " + "; ".join(original.reasons)
    else:
        reason = str(exc).strip()
    return DefinitionError(f"{element}: {reason}", element=element)


def _bare_error(exc: Exception) -> CaseError:
    """A plain exception out of SpiffWorkflow: its timers parse the value an expression gave unwrapped
    (`ValueError: Invalid isoformat string`). The element is the task the innermost frame was updating."""
    task, tb = None, exc.__traceback__
    while tb is not None:
        candidate = tb.tb_frame.f_locals.get("my_task", tb.tb_frame.f_locals.get("task"))
        if isinstance(candidate, Task):
            task = candidate
        tb = tb.tb_next
    element = task.task_spec.bpmn_id if task is not None else None
    if task is not None and isinstance(getattr(task.task_spec, "event_definition", None), TimerEventDefinition):
        return DefinitionError(f"{element}: the timer's expression gave no valid ISO 8601 instant, duration "
                               f"or cycle: {type(exc).__name__}: {exc}", element=element)
    return EngineError(f"{element or 'the engine'}: {type(exc).__name__}: {exc}", element=element)


class CaseScriptEngine(SandboxScriptEngine):
    """The sandboxed engine, remembering which service task is calling out."""

    current_task = None

    def call_service(self, task, **kwargs):
        self.current_task = task
        return super().call_service(task, **kwargs)


class CaseOperation:
    """One engine operation on one locked case: load (or start) its workflow, act, and finish."""

    @classmethod
    def new_case(cls, rt, session, case: Case, actor: str, definition) -> "CaseOperation":
        """An operation on a case that has no workflow yet: starts one from the definition."""
        if case.id is not None:  # flushed already: it has no state row yet, nothing to read
            set_committed_value(case, "state_row", None)
        op = cls(rt, session, case, actor, definition,
                 workflow=BpmnWorkflow(definition.spec, definition.subprocess_specs))
        op.is_new_case = True
        op.units_before = set()
        return op

    def __init__(self, rt, session, case: Case, actor: str, definition, workflow: BpmnWorkflow | None = None):
        self.rt = rt
        self.session = session
        self.case = case
        self.actor = actor
        self.definition = definition
        self.now = clock.now()
        self.pending_events: list[dict] = []
        self.batch = WriteBatch(session)  # what finish() writes, and the messages queued before it
        self.is_new_case = False
        self._new_rows: dict[str, CaseTask] = {}
        self._facts_recorded: set = set()  # task rows already in the case's statistics timeline (case_fact)
        self._fact_row = vars(case).get("_fact_row")  # that timeline's row, when read with the case
        self.ctx = HandlerContext(self)
        self.script_engine = CaseScriptEngine(SandboxEnvironment(rt.functions, self._call_service))
        if workflow is None:
            workflow = rt.workflows.take(case.id, definition.id, case.state) \
                or load_workflow(case.state, definition.spec, definition.subprocess_specs)
        workflow.script_engine = self.script_engine
        self.workflow = workflow
        self.before = self.snapshot()
        self.status_before = case.status
        self.timers_before = {t.task_id: t.due_at for t in pending_timers(workflow)}
        self.units_before = self._case_units()  # in case_unit already (written by the operations that set them)

    # -- workflow ---------------------------------------------------------------

    def all_tasks(self):
        yield from self.workflow.tasks.values()
        for sub in self.workflow.subprocesses.values():
            yield from sub.tasks.values()

    def snapshot(self) -> dict:
        return {t.id: t.state for t in self.all_tasks() if t.state & RECORDED}

    def ready_manual_tasks(self):
        return [t for t in self.all_tasks() if t.state == TaskState.READY and t.task_spec.manual]

    def workflow_data(self) -> dict:
        """The case's data as the workflow holds it now: its end data, else the latest step's."""
        if self.workflow.is_completed():
            return dict(self.workflow.data)
        done = [t for t in self.all_tasks() if t.state & (TaskState.READY | TaskState.COMPLETED)]
        latest = max(done, key=lambda t: t.last_state_change, default=None)
        return dict(latest.data) if latest is not None else {}

    def seed(self, data: dict) -> None:
        """Put the initial data on the start of a new workflow."""
        for task in self.workflow.get_tasks(state=TaskState.READY):
            task.data.update(data)

    @staticmethod
    def is_ready_manual(task) -> bool:
        # Task.run() has no state check of its own: completed or cancelled tasks must be refused here.
        return task.state == TaskState.READY and bool(task.task_spec.manual)

    def find_task(self, task_id: str):
        try:
            return self.workflow.get_task_from_id(uuid.UUID(str(task_id)))
        except (ValueError, KeyError, WorkflowException):
            return None

    def fire_due_timers(self) -> int:
        """Let SpiffWorkflow fire every due timer of the case; the number of timers that fired."""
        waiting = {t.id for t in self.workflow.event_manager.tasks.values() if timer_due(t) is not None}
        try:
            self.workflow.refresh_timers()
        except WorkflowTaskException as exc:
            raise self._wrap(exc) from exc
        self.run_engine()
        return sum(1 for tid in waiting if self.workflow.tasks.get(tid) is None
                   or not self.workflow.tasks[tid].state & TaskState.WAITING)

    def run_engine(self) -> None:
        try:
            self.workflow.do_engine_steps()
        except WorkflowTaskException as exc:
            raise self._wrap(exc) from exc
        except SpiffWorkflowException as exc:
            raise EngineError(f"the engine stopped: {exc}") from exc
        except (ValueError, TypeError, OverflowError) as exc:
            raise _bare_error(exc) from exc

    def _wrap(self, exc: WorkflowTaskException) -> CaseError:
        task = getattr(exc, "task", None)
        element = task.task_spec.bpmn_id if task is not None else None
        notes = list(getattr(exc, "__notes__", []) or [])
        cause = exc.__cause__ or getattr(exc, "exception", None)
        while cause is not None and not isinstance(cause, _HandlerError) and cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, _HandlerError) and isinstance(cause.cause, CaseError):
            return cause.cause  # a handler refusing bad input (e.g. an unknown unit) speaks for itself
        if isinstance(cause, _HandlerError):
            return HandlerFailed(f"service task {element} failed: {cause.cause}", element=element,
                                 handler=cause.operation)
        if element is None:
            return EngineError(f"the engine stopped: {exc}", notes=notes or None)
        return _definition_error(exc, element)

    def _call_service(self, operation_name, operation_params, data):
        handler = self.rt.handlers.get(operation_name)
        if handler is None:
            raise _HandlerError(operation_name, LookupError("no such handler is registered"))
        params = {k: v.get("value") if isinstance(v, dict) else v for k, v in (operation_params or {}).items()}
        before = dict(data)
        try:
            result = handler(self.ctx, params, data)
            encoded = json.dumps(result, ensure_ascii=False, default=str)
        except Exception as exc:  # any handler failure becomes a case error naming the element
            raise _HandlerError(operation_name, exc) from exc
        task = self.script_engine.current_task
        payload = {"handler": operation_name, "result": json.loads(encoded)}
        # What the handler wrote into the task data: a replay applies it instead of running the handler.
        delta = {k: v for k, v in data.items() if k not in before or before[k] != v}
        if delta:
            payload["data"] = delta
        self.event("service_called", task=task, payload=payload)
        return encoded

    # -- recording --------------------------------------------------------------

    def event(self, type_: str, task=None, payload: dict | None = None, actor: str | None = None) -> None:
        self.pending_events.append({
            "type": type_,
            "actor": actor or self.actor,
            "task_id": str(task.id) if task is not None else None,
            "element": task.task_spec.bpmn_id if task is not None else None,
            "lane": task.task_spec.lane if task is not None else None,
            "payload": payload,
        })

    def finish(self) -> None:
        """Record the transitions since the snapshot, update the projection and the record, save."""
        after = self.snapshot()
        batch = self.batch
        for task in self.all_tasks():
            old, new = self.before.get(task.id), after.get(task.id)
            if old == new or new is None:
                continue
            if not task.task_spec.manual:
                if old == TaskState.WAITING and new & (TaskState.READY | TaskState.COMPLETED):
                    self._timer_fired(task)
                continue
            if new == TaskState.READY:
                self._task_ready(task)
            elif new == TaskState.CANCELLED and old is not None:
                self._task_ended(task, TaskRowState.CANCELLED)
                self.event("task_cancelled", task=task)
        self._update_record()
        if self.case.status != self.status_before and self.case.id is not None:
            enqueue_status_callback(self.session, self.case, self.status_before, self.now, writer=batch)
            self.status_before = self.case.status
        self._sync_timers(batch)
        self.case.open_due_at = self._open_due()
        compact(self.workflow)
        state = self.case.state = dump_workflow(self.workflow)
        self.rt.workflows.keep(self.case.id, self.definition.id, state, self.workflow)
        self.case.serializer_version = SERIALIZER_VERSION
        self.case.updated_at = self.now
        rows = []
        for ev in self.pending_events:
            self.case.last_seq = (self.case.last_seq or 0) + 1
            rows.append(dict(ev, seq=self.case.last_seq, at=self.now, definition_version=self.definition.version))
        if rows:
            self.case.chain_hash = append_events(self.session, self.case, rows, state_digest(self.workflow),
                                                 facts=False, writer=batch)
            self.case.chain_seq = self.case.last_seq
        fresh = [r for key, r in self._new_rows.items() if key not in self._facts_recorded]
        if self.is_new_case and self._fact_row is None:  # the new case's timeline: one INSERT
            self._fact_row = case_facts.start(self.session, self.case.id, fresh, rows)
        else:  # one UPDATE of the timeline read with the case (lock_task), or read now
            self._fact_row = case_facts.record(self.session, self.case.id, fresh, rows, self._fact_row)
        self._facts_recorded.update(r.id for r in fresh)
        self._record_units(batch)
        self.pending_events = []
        self.before = after
        # The case, its state, timeline and task rows with the events, timers and units: one round trip on
        # PostgreSQL (engine.store.batch); the ORM's flush writes whatever else the operation added.
        session = self.session
        batch.objects(*(obj for obj in (*session.dirty, *session.new) if isinstance(obj, BATCHED)))
        batch.send()
        session.flush()

    def _case_units(self) -> set[str]:
        case = self.case
        return {u for u in (case.community_code, case.routed_unit, case.current_unit) if u}

    def _record_units(self, batch) -> None:
        """Add the units this operation brought into the case to `case_unit` (the lists' scope index).

        The case's community, routed and current unit as loaded are in the table
        already (every operation that set them wrote them), so only the others
        are written, and only when there are any: most steps write nothing.
        """
        case = self.case
        units = self._case_units() | {r.unit_code for r in self._new_rows.values() if r.unit_code}
        new = units - self.units_before
        if not new:
            return
        rows = [{"case_id": case.id, "unit_code": u, "community": u == case.community_code,
                 "created_at": case.created_at} for u in sorted(new)]
        table = CaseUnit.__table__
        if self.is_new_case:
            batch.execute(table.insert(), rows)
        else:
            insert = pg_insert if self.session.bind.dialect.name == "postgresql" else sqlite_insert
            batch.execute(insert(table).on_conflict_do_nothing(), rows)
        self.units_before = units

    def _task_row(self, task_id: str) -> CaseTask | None:
        # Rows added in this operation are not flushed yet: session.get() would not find them.
        return self._new_rows.get(task_id) or self.session.get(CaseTask, task_id)

    def open_task_rows(self) -> list[CaseTask]:
        """The projection rows of the ready user tasks (from the session, without a query when fresh)."""
        rows = [self._task_row(str(t.id)) for t in self.ready_manual_tasks()]
        return sorted((r for r in rows if r is not None), key=lambda r: (r.created_at, r.id))

    def _open_due(self):
        """The earliest deadline of the case's open steps (None when none has one): `Case.open_due_at`."""
        if self.workflow.is_completed():
            return None
        dues = [row.due_at for row in self.open_task_rows() if row.due_at is not None]
        return min(dues) if dues else None

    def _timer_fired(self, task) -> None:
        due = timer_due(task)
        if due is None:
            return
        props = (getattr(task.task_spec, "extensions", None) or {}).get("properties", {})
        self.event("timer_fired", task=task, payload={
            "kind": props.get("timer_kind", "timer"), "due_at": due.isoformat(), "fired_at": self.now.isoformat(),
        })

    def _sync_timers(self, batch) -> None:
        timers = pending_timers(self.workflow)
        new = sync_timers(batch, self.case.id, self.timers_before, timers, self.now)
        self.timers_before = {t.task_id: t.due_at for t in timers}
        for t in new:
            if t.attached_task_id is None or t.kind not in ("due", "warn"):
                continue
            row = self._task_row(t.attached_task_id)
            if row is None:
                continue
            if t.kind == "warn":
                row.warn_at = t.due_at
            else:
                row.due_at = t.due_at
                calendar = self.rt.calendar
                row.due_estimated = not (calendar.is_covered(self.now.astimezone(calendar.tz).date())
                                         and calendar.is_covered(t.due_at.astimezone(calendar.tz).date()))

    def _task_ready(self, task) -> None:
        meta = self.definition.tasks.get(task.task_spec.bpmn_id)
        rule = self.rt.tables.lanes.get(task.task_spec.lane)
        self._refuse_unitless(task, rule)
        row = CaseTask(
            id=str(task.id), case_id=self.case.id, bpmn_id=task.task_spec.bpmn_id,
            name=meta.name if meta else task.task_spec.bpmn_id, lane=task.task_spec.lane,
            role=rule.role if rule else None, unit_code=self.unit_for(rule, task.data),
            state=TaskRowState.READY.value, created_at=self.now,
        )
        # The named handler: a task whose `assignee_from` property names a data variable (e.g. the
        # responsible person chosen at sign-for) is assigned to that user when the unit has such a user.
        source = meta.assignee_from if meta else None
        person = task.data.get(source) if source else None
        if isinstance(person, str) and person and self.ctx.is_unit_user(person, row.unit_code, row.role):
            row.assignee = person
        self.session.add(row)
        self._new_rows[row.id] = row
        self.event("task_ready", task=task, payload={"assignee": row.assignee} if row.assignee else None)

    def _task_ended(self, task, state: TaskRowState, actor: str | None = None) -> None:
        row = self._task_row(str(task.id))
        if row is not None:
            check_task_transition(row.state, state.value)
            row.state = state.value
            row.ended_at = self.now
            row.ended_by = actor

    def complete_task(self, task, data: dict) -> None:
        task.data.update(data)
        try:
            task.run()
        except WorkflowTaskException as exc:
            raise self._wrap(exc) from exc
        self._task_ended(task, TaskRowState.COMPLETED, self.actor)
        self.event("task_completed", task=task, payload={"data": data})

    def unit_for(self, rule, data: dict | None = None) -> str | None:
        return self.rt.tables.unit_for(rule, self.case.community_code, self.case.routed_unit, data)

    def _refuse_unitless(self, task, rule) -> None:
        """A ready user task nobody could see is never created: the whole operation rolls back instead."""
        gap = self.rt.tables.unit_gap(rule, self.case.community_code, self.case.routed_unit, task.data)
        if gap is None:
            return
        element, lane = task.task_spec.bpmn_id, task.task_spec.lane
        exc = OrganisationGap(f"case {self.case.case_no}: user task {element} (lane {lane}) would have no unit: "
                              f"{gap}; complete the organisation, then retry", element=element, lane=lane,
                              gap=gap)
        # For the incident recorded after the rollback (not in the error body); a new case is rolled back too.
        exc.case_id = None if self.is_new_case else self.case.id
        raise exc

    def _update_record(self) -> None:
        case = self.case
        if self.workflow.is_completed():
            if case.status != CaseStatus.CLOSED.value:
                case.status = CaseStatus.CLOSED.value
                case.closed_at = self.now
                case.current_unit = None
                self.event("case_completed", payload={"end": self._end_event()})
            return
        ready = self.ready_manual_tasks()
        # A co-handler's task (an `assisting` lane) never stands for the case: while only co-handlers work,
        # the case stays with the lead unit, in the status its lead step gave it.
        leading = [t for t in ready if not getattr(self.rt.tables.lanes.get(t.task_spec.lane), "assisting", False)]
        if leading:
            task = leading[0]
            meta = self.definition.tasks.get(task.task_spec.bpmn_id)
            rule = self.rt.tables.lanes.get(task.task_spec.lane)
            if meta and meta.status:
                case.status = meta.status
            if rule is not None:
                case.level = rule.level
                case.current_unit = self.unit_for(rule, task.data)

    def _end_event(self) -> str | None:
        ends = [t for t in self.workflow.tasks.values()
                if t.state == TaskState.COMPLETED and t.task_spec.__class__.__name__ == "EndEvent"]
        return ends[-1].task_spec.bpmn_id if ends else None


def read_task_data(definition, state: bytes | None, task_id: str, names: tuple[str, ...]) -> dict:
    """Some of the data an open task holds (what its `show` property names), read from the stored state."""
    if not names or state is None:
        return {}
    workflow = load_workflow(state, definition.spec, definition.subprocess_specs)
    try:
        task = workflow.get_task_from_id(uuid.UUID(str(task_id)))
    except (ValueError, KeyError, WorkflowException):
        return {}
    if task is None:
        return {}
    return {name: task.data.get(name) for name in names}
