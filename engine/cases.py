"""Case services: one function per use case, each one unit of work.

Every function that changes a case locks it (row lock on PostgreSQL, an
immediate transaction on SQLite), loads it, acts, records events and the
task projection, saves and commits, all in one transaction; on any exception
the transaction rolls back and nothing of the attempt remains. Callers get
plain dicts back, never SpiffWorkflow objects.
"""
from __future__ import annotations

from marshmallow import ValidationError
from sqlalchemy import select, text
from sqlalchemy.orm.exc import StaleDataError
from SpiffWorkflow.bpmn import BpmnWorkflow

from engine import clock
from engine.errors import CaseNotFound, InvalidInput, StaleVersion, TaskNotFound, TaskNotReady
from engine.forms import validate as validate_form
from engine.intake import IntakeSchema
from engine.models import Case, CaseEvent, CaseTask
from engine.operation import CaseOperation
from engine.serializer import SERIALIZER_VERSION
from engine.status import CaseStatus, TaskRowState
from engine.views import case_view, event_view, task_view

SYSTEM = "system"


def _next_case_no(session, year: int) -> str:
    session.execute(text("INSERT INTO case_counter (year, last_no) VALUES (:y, 0) ON CONFLICT (year) DO NOTHING"),
                    {"y": year})
    n = session.execute(text("UPDATE case_counter SET last_no = last_no + 1 WHERE year = :y RETURNING last_no"),
                        {"y": year}).scalar_one()
    return f"{year}-{n:06d}"


def _lock_case(rt, session, *, case_no: str | None = None, case_id: int | None = None) -> Case:
    stmt = select(Case).where(Case.case_no == case_no) if case_no is not None else select(Case).where(Case.id == case_id)
    case = session.scalar(stmt.with_for_update())
    if case is None:
        raise CaseNotFound(f"case {case_no or case_id} does not exist")
    return case


def _commit_guard(fn):
    """A concurrent writer that slipped past the lock shows up as a stale version, never as lost data."""

    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except StaleDataError as exc:
            raise StaleVersion("the case was changed by someone else; reload and try again") from exc

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def validate_intake(rt, intake: dict) -> dict:
    schema = IntakeSchema(categories=rt.tables.routes.keys(),
                          communities={u.code for u in rt.tables.units.values() if u.kind == "community"} or None)
    try:
        return schema.load(intake)
    except ValidationError as exc:
        raise InvalidInput("the intake form has invalid fields", errors=exc.messages) from exc


@_commit_guard
def start_case(rt, intake: dict, actor: str) -> dict:
    """One-door acceptance: register the case, start its procedure, run to the first user task."""
    data = validate_intake(rt, intake)
    route = rt.tables.route(data["category"])
    limits = rt.tables.time_limits["rework"]
    now = clock.now()
    with rt.db.write() as session:
        definition = rt.definitions.latest(session, route.process)
        case = Case(
            case_no=_next_case_no(session, now.astimezone(rt.tz).year), definition_id=definition.id,
            title=data["title"], description=data["description"], category=data["category"],
            channel=data["channel"], reporter_name=data["reporter"]["name"],
            reporter_phone=data["reporter"]["phone"], reporter_id_no=data["reporter"]["id_no"],
            address=data["location"]["address"], lat=data["location"]["lat"], lon=data["location"]["lon"],
            grid=data["location"]["grid"], community_code=data["community"], status=CaseStatus.MEDIATING.value,
            level="community", current_unit=data["community"], state=b"", serializer_version=SERIALIZER_VERSION,
            created_by=actor, created_at=now, updated_at=now, last_seq=0,
        )
        session.add(case)
        session.flush()
        workflow = BpmnWorkflow(definition.spec, definition.subprocess_specs)
        initial = {
            "case_no": case.case_no, "title": case.title, "description": case.description,
            "category": case.category, "channel": case.channel, "community": case.community_code,
            "routed_unit": None, "rework_count": 0, "return_count": 0,
            "max_reworks": limits["max_reworks"], "max_returns": limits["max_returns"],
        }
        op = CaseOperation(rt, session, case, actor, definition, workflow=workflow)
        op.seed(initial)
        op.event("case_started", payload={"definition": f"{definition.process_id}:{definition.version}",
                                          "intake": data})
        op.run_engine()
        op.finish()
        return case_view(session, case, include_tasks=True, open_rows=op.open_task_rows())


@_commit_guard
def complete_task(rt, task_id: str, data: dict, actor: str, expected_version: int | None = None) -> dict:
    """Complete a READY user task with the submitted form; only a READY manual task can be completed."""
    with rt.db.write() as session:
        row = session.get(CaseTask, str(task_id))
        if row is None:
            raise TaskNotFound(f"task {task_id} does not exist")
        case = _lock_case(rt, session, case_id=row.case_id)
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
        meta = definition.tasks[task.task_spec.bpmn_id]
        cleaned = validate_form(list(meta.form), data)
        if "rating" in cleaned and cleaned["rating"]:
            case.rating = cleaned["rating"]
        op.complete_task(task, cleaned)
        op.run_engine()
        op.finish()
        return case_view(session, case, include_tasks=True, open_rows=op.open_task_rows())


def get_case(rt, case_no: str) -> dict:
    with rt.db.read() as session:
        case = session.scalar(select(Case).where(Case.case_no == case_no))
        if case is None:
            raise CaseNotFound(f"case {case_no} does not exist")
        return case_view(session, case, include_tasks=True)


def get_task(rt, task_id: str) -> dict:
    with rt.db.read() as session:
        row = session.get(CaseTask, str(task_id))
        if row is None:
            raise TaskNotFound(f"task {task_id} does not exist")
        case = session.get(Case, row.case_id)
        definition = rt.definitions.get(session, case.definition_id)
        return task_view(row, definition, case)


def case_events(rt, case_no: str) -> list[dict]:
    with rt.db.read() as session:
        case = session.scalar(select(Case).where(Case.case_no == case_no))
        if case is None:
            raise CaseNotFound(f"case {case_no} does not exist")
        rows = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.seq))
        return [event_view(e) for e in rows]
