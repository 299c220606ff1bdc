"""Periodic screening (矛盾排查): schedules per level, rounds, and what each unit found.

`start_schedule` starts processes/screening.bpmn once for a level of
screening.toml (again only after that schedule ended): its daily cycle timer,
fired by the ordinary timer service under the case lock, opens one round per
period (engine.rules.screening; the period's row in `screening_period` is the
once-only guard across workers and restarts). `report_finding` is a unit's
answer to its screening task: nothing new, an update on a known risk, or a new
case, registered through the intake with channel `screening` and linked to
the round (`screening_finding`). `list_rounds` shows the rounds with their
findings.
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from engine import clock
from engine.core.operation import CaseOperation
from engine.errors import Forbidden, InvalidInput, TaskNotFound
from engine.rules.status import CaseStatus
from engine.services import cases
from engine.services.procedures import start_procedure
from engine.store.models import Case
from engine.store.procedure_models import ScreeningFinding, ScreeningPeriod

PROCESS_ID = "screening"
CATEGORY = "screening"
FINDINGS = ("nothing_new", "new_case", "risk_update")
SCHEDULERS = frozenset({"supervisor", "admin"})


def _title(rule) -> str:
    return f"{rule.name}（{rule.key}）"


def start_schedule(rt, level: str, actor: str = "system", days: int = 366, *, user=None) -> dict:
    """The level's screening schedule, running for `days` days; the open one if it runs already.

    Given a `user`, they must be a supervisor or an administrator."""
    if user is not None:
        if not user.roles & SCHEDULERS:
            raise Forbidden(f"{user.username} may not start screening schedules")
        actor = user.username
    schedule = rt.tables.screening
    if level not in schedule.levels:
        raise InvalidInput(f"no screening level {level!r}", errors={
            "level": [f"must be one of: {', '.join(schedule.levels) or 'none (processes/screening.toml)'}"]})
    rule = schedule.levels[level]
    with rt.db.read() as session:
        open_no = session.scalar(select(Case.case_no).where(Case.category == CATEGORY, Case.title == _title(rule),
                                                            Case.status != CaseStatus.CLOSED.value))
    if open_no is not None:
        return dict(cases.get_case(rt, open_no), started=False)
    until = rt.calendar.add_working_days(clock.now() + timedelta(days=days), 0).iso()
    place = (rt.tables.grids.default_desk or next(iter(rt.tables.org.communities()), None)) or "-"
    record = {"title": _title(rule), "description": f"screening schedule: every {rule.every}, units of kind "
                                                   f"{', '.join(rule.kinds)}", "category": CATEGORY,
              "channel": "schedule", "community": place, "status": CaseStatus.SCREENING.value, "level": "screening"}
    data = {"category": CATEGORY, "channel": "schedule", "community": place, "screening_level": level,
            "screening_until": until}
    return dict(start_procedure(rt, PROCESS_ID, record, data, actor, payload={"level": level}), started=True)


def _task_round(rt, task_id: str) -> tuple[int | None, str | None]:
    with rt.db.read() as session:
        row = cases.find_task_row(session, task_id)
        case = session.get(Case, row.case_id)
        if row.bpmn_id != "screen":
            raise TaskNotFound(f"task {task_id} is no screening task")
        definition = rt.definitions.get(session, case.definition_id)
        task = CaseOperation(rt, session, case, "reader", definition).find_task(task_id)
        data = task.data if task is not None else {}
        return data.get("round_id"), data.get("screening_unit")


def report_finding(rt, task_id: str, form: dict, actor: str | None = None, *, user=None) -> dict:
    """Answer a screening task; a new case is registered (channel `screening`) and linked to the round.

    Three steps, each its own unit of work: the new case's intake, the task's
    completion (its form names the case), the finding's row. A completion that
    fails after the intake leaves the new case registered; the unit answers
    the task again with `finding_case_no` naming it.
    """
    form = form if isinstance(form, dict) else {}
    finding = form.get("finding")
    if finding not in FINDINGS:
        raise InvalidInput("unknown finding", errors={"finding": [f"must be one of: {', '.join(FINDINGS)}"]})
    round_id, unit = _task_round(rt, task_id)
    data = {"finding": finding}
    if form.get("note") is not None:
        data["finding_note"] = form["note"]
    new_case = None
    if finding == "new_case":
        if form.get("case_no"):
            data["finding_case_no"] = form["case_no"]
        elif isinstance(form.get("intake"), dict):
            new_case = cases.start_case(rt, dict(form["intake"], channel="screening"), actor, user=user)
            data["finding_case_no"] = new_case["case_no"]
        else:
            raise InvalidInput("a new case needs its intake form", errors={
                "intake": ["give the new case's intake form (or case_no of one registered already)"]})
    result = cases.complete_task(rt, task_id, data, actor, user=user)
    with rt.db.write() as session:
        case_id = None
        if data.get("finding_case_no"):
            case_id = session.scalar(select(Case.id).where(Case.case_no == data["finding_case_no"]))
        if round_id is not None:
            session.add(ScreeningFinding(period_id=round_id, unit_code=unit or "", kind=finding, case_id=case_id,
                                         note=data.get("finding_note"), recorded_at=clock.now()))
    out = {"round_id": round_id, "unit": unit, "finding": finding, "case_no": data.get("finding_case_no"),
           "schedule": result["case_no"]}
    if new_case is not None:
        out["tracking_code"] = new_case.get("tracking_code")
    return out


def list_rounds(rt, level: str | None = None, limit: int = 100) -> list[dict]:
    with rt.db.read() as session:
        stmt = select(ScreeningPeriod).order_by(ScreeningPeriod.period_start.desc(), ScreeningPeriod.level)
        if level is not None:
            stmt = stmt.where(ScreeningPeriod.level == level)
        periods = session.scalars(stmt.limit(limit)).all()
        findings: dict[int, list] = {}
        if periods:
            rows = session.execute(select(ScreeningFinding, Case.case_no)
                                   .outerjoin(Case, Case.id == ScreeningFinding.case_id)
                                   .where(ScreeningFinding.period_id.in_([p.id for p in periods]))
                                   .order_by(ScreeningFinding.id)).all()
            for f, no in rows:
                findings.setdefault(f.period_id, []).append({"unit": f.unit_code, "finding": f.kind, "case_no": no,
                                                             "note": f.note, "recorded_at": f.recorded_at.isoformat()})
        return [{"id": p.id, "level": p.level, "period_start": p.period_start.isoformat(), "units": p.units,
                 "opened_at": p.opened_at.isoformat(), "findings": findings.get(p.id, [])} for p in periods]
