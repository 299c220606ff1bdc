"""Starting a procedure that is not a citizen's intake: one unit of work.

The seeds' other procedures (mediation docking handed on its own, the
stability risk assessment a project owner starts, a screening round) are
cases too: a case row, a pinned definition version, the task projection, the
ledger, timers and red lights, exactly like a dispute. What differs is who
starts them and with what: `start_procedure` takes the record fields the
caller's use case checked and the initial data of the diagram, and runs the
workflow to its first user task.
"""
from __future__ import annotations

from engine import clock
from engine.core.operation import CaseOperation
from engine.core.serializer import SERIALIZER_VERSION
from engine.rules.status import CaseStatus
from engine.services.cases import _next_case_no
from engine.services.views import case_view
from engine.store.models import Case


def start_procedure_in(rt, session, process_id: str, record: dict, data: dict, actor: str,
                       payload: dict | None = None) -> tuple[Case, list]:
    """Inside an open write transaction: create the case, run `process_id` to its first wait.

    Returns the case and the rows of its open user tasks."""
    now = clock.now()
    definition = rt.definitions.latest(session, process_id)
    case = Case(
        case_no=_next_case_no(session, now.astimezone(rt.tz).year), definition_id=definition.id,
        title=record["title"], description=record.get("description") or record["title"],
        category=record["category"], channel=record["channel"], reporter_name=record.get("reporter_name") or "",
        reporter_phone=record.get("reporter_phone") or "", reporter_id_no=None,
        address=record.get("address") or "", lat=None, lon=None, grid=record.get("grid"),
        community_code=record["community"], status=record.get("status") or CaseStatus.MEDIATING.value,
        level=record.get("level") or "community", current_unit=record.get("current_unit"),
        routed_unit=record.get("routed_unit"), serializer_version=SERIALIZER_VERSION,
        created_by=actor, created_at=now, reported_at=now, updated_at=now, last_seq=0,
    )
    session.add(case)
    session.flush()
    op = CaseOperation.new_case(rt, session, case, actor, definition)
    op.seed(dict(data))
    op.event("case_started", payload={"definition": f"{definition.process_id}:{definition.version}",
                                      "procedure": process_id, "data": data, **(payload or {})})
    op.run_engine()
    op.finish()
    return case, op.open_task_rows()


def start_procedure(rt, process_id: str, record: dict, data: dict, actor: str, payload: dict | None = None) -> dict:
    with rt.db.write() as session:
        case, rows = start_procedure_in(rt, session, process_id, record, data, actor, payload)
        return case_view(session, case, include_tasks=True, open_rows=rows)
