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

from sqlalchemy import insert

from SpiffWorkflow import TaskState
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.exceptions import SpiffWorkflowException, WorkflowException

from engine import clock
from engine.compaction import compact
from engine.errors import CaseError, EngineError, HandlerFailed
from engine.models import Case, CaseEvent, CaseTask, Outbox
from engine.sandbox import SandboxScriptEngine, SandboxEnvironment
from engine.serializer import SERIALIZER_VERSION, dump_workflow, load_workflow
from engine.status import CaseStatus, TaskRowState

RECORDED = TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.COMPLETED \
    | TaskState.ERROR | TaskState.CANCELLED


class HandlerContext:
    """What a service-task handler may touch: the case record, the tables, the clock, the outbox."""

    def __init__(self, op: "CaseOperation"):
        self._op = op
        self.case = op.case
        self.tables = op.rt.tables
        self.calendar = op.rt.calendar
        self.now = op.now

    def notify(self, recipient_kind: str, recipient: str, message: str, channel: str = "sms") -> None:
        self._op.session.add(Outbox(case_id=self.case.id, channel=channel, recipient_kind=recipient_kind,
                                    recipient=recipient or "", message=message, status="pending",
                                    created_at=self.now))


class _HandlerError(Exception):
    def __init__(self, operation: str, cause: Exception):
        super().__init__(f"handler {operation!r} failed: {cause}")
        self.operation = operation
        self.cause = cause


class CaseScriptEngine(SandboxScriptEngine):
    """The sandboxed engine, remembering which service task is calling out."""

    current_task = None

    def call_service(self, task, **kwargs):
        self.current_task = task
        return super().call_service(task, **kwargs)


class CaseOperation:
    def __init__(self, rt, session, case: Case, actor: str, definition, workflow: BpmnWorkflow | None = None):
        self.rt = rt
        self.session = session
        self.case = case
        self.actor = actor
        self.definition = definition
        self.now = clock.now()
        self.pending_events: list[dict] = []
        self.ctx = HandlerContext(self)
        self.script_engine = CaseScriptEngine(SandboxEnvironment(rt.functions, self._call_service))
        if workflow is None:
            workflow = load_workflow(case.state, definition.spec, definition.subprocess_specs)
        workflow.script_engine = self.script_engine
        self.workflow = workflow
        self.before = self.snapshot()

    # -- workflow ---------------------------------------------------------------

    def all_tasks(self):
        yield from self.workflow.tasks.values()
        for sub in self.workflow.subprocesses.values():
            yield from sub.tasks.values()

    def snapshot(self) -> dict:
        return {t.id: t.state for t in self.all_tasks() if t.state & RECORDED}

    def ready_manual_tasks(self):
        return [t for t in self.all_tasks() if t.state == TaskState.READY and t.task_spec.manual]

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

    def run_engine(self) -> None:
        try:
            self.workflow.do_engine_steps()
        except WorkflowTaskException as exc:
            raise self._wrap(exc) from exc
        except SpiffWorkflowException as exc:
            raise EngineError(f"the engine stopped: {exc}") from exc

    def _wrap(self, exc: WorkflowTaskException) -> CaseError:
        task = getattr(exc, "task", None)
        element = task.task_spec.bpmn_id if task is not None else None
        notes = list(getattr(exc, "__notes__", []) or [])
        cause = exc.__cause__ or getattr(exc, "exception", None)
        while cause is not None and not isinstance(cause, _HandlerError) and cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, _HandlerError):
            return HandlerFailed(f"service task {element} failed: {cause.cause}", element=element,
                                 handler=cause.operation)
        return EngineError(f"{element}: {exc}", element=element, notes=notes or None)

    def _call_service(self, operation_name, operation_params, data):
        handler = self.rt.handlers.get(operation_name)
        if handler is None:
            raise _HandlerError(operation_name, LookupError("no such handler is registered"))
        params = {k: v.get("value") if isinstance(v, dict) else v for k, v in (operation_params or {}).items()}
        try:
            result = handler(self.ctx, params, data)
            encoded = json.dumps(result, ensure_ascii=False, default=str)
        except Exception as exc:  # any handler failure becomes a case error naming the element
            raise _HandlerError(operation_name, exc) from exc
        task = self.script_engine.current_task
        self.event("service_called", task=task, payload={"handler": operation_name, "result": json.loads(encoded)})
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
        for task in self.all_tasks():
            old, new = self.before.get(task.id), after.get(task.id)
            if old == new or new is None or not task.task_spec.manual:
                continue
            if new == TaskState.READY:
                self._task_ready(task)
            elif new == TaskState.CANCELLED and old is not None:
                self._task_ended(task, TaskRowState.CANCELLED)
                self.event("task_cancelled", task=task)
        self._update_record()
        compact(self.workflow)
        self.case.state = dump_workflow(self.workflow)
        self.case.serializer_version = SERIALIZER_VERSION
        self.case.updated_at = self.now
        rows = []
        for ev in self.pending_events:
            self.case.last_seq = (self.case.last_seq or 0) + 1
            rows.append(dict(ev, case_id=self.case.id, seq=self.case.last_seq, at=self.now,
                             definition_version=self.definition.version))
        if rows:
            self.session.execute(insert(CaseEvent), rows)
        self.pending_events = []
        self.before = after
        self.session.flush()

    def open_task_rows(self) -> list[CaseTask]:
        """The projection rows of the ready user tasks (from the session, without a query when fresh)."""
        rows = [self.session.get(CaseTask, str(t.id)) for t in self.ready_manual_tasks()]
        return sorted((r for r in rows if r is not None), key=lambda r: (r.created_at, r.id))

    def _task_ready(self, task) -> None:
        meta = self.definition.tasks.get(task.task_spec.bpmn_id)
        rule = self.rt.tables.lanes.get(task.task_spec.lane)
        self.session.add(CaseTask(
            id=str(task.id), case_id=self.case.id, bpmn_id=task.task_spec.bpmn_id,
            name=meta.name if meta else task.task_spec.bpmn_id, lane=task.task_spec.lane,
            role=rule.role if rule else None, unit_code=self.unit_for(rule),
            state=TaskRowState.READY.value, created_at=self.now,
        ))
        self.event("task_ready", task=task)

    def _task_ended(self, task, state: TaskRowState, actor: str | None = None) -> None:
        row = self.session.get(CaseTask, str(task.id))
        if row is not None:
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

    def unit_for(self, rule) -> str | None:
        if rule is None:
            return None
        if rule.unit_from == "community":
            return self.case.community_code
        if rule.unit_from == "routed_unit":
            return self.case.routed_unit
        return self.rt.tables.fixed_units.get(rule.unit_from)

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
        if ready:
            task = ready[0]
            meta = self.definition.tasks.get(task.task_spec.bpmn_id)
            rule = self.rt.tables.lanes.get(task.task_spec.lane)
            if meta and meta.status:
                case.status = meta.status
            if rule is not None:
                case.level = rule.level
                case.current_unit = self.unit_for(rule)

    def _end_event(self) -> str | None:
        ends = [t for t in self.workflow.tasks.values()
                if t.state == TaskState.COMPLETED and t.task_spec.__class__.__name__ == "EndEvent"]
        return ends[-1].task_spec.bpmn_id if ends else None
