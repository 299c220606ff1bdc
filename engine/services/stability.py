"""Stability risk assessment (社会稳定风险评估, 稳评) of a major decision, and the approval gate.

`start_assessment` is the project owner unit's use case (a department or a
street office, never a citizen's intake): it names the project, its kind
(demolition, enterprise restructuring, a project, a policy change), the place
(a community: its district, street and community give opinions) and the
third-party assessor, an external organisation recorded on the case; then
processes/stability_assessment.bpmn runs. `approve_project` is the gate: a
project is marked approved only with a finished assessment whose decision
allows it (proceed, or proceed with measures all carried out); otherwise the
refusal names the field `assessment` and nothing is stored.
`link_case` lets a demolition or enterprise-restructuring dispute reference
an assessment. `assessment_view` reads the assessment back.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from engine import clock
from engine.core.operation import CaseOperation
from engine.errors import CaseNotFound, Conflict, Forbidden, InvalidInput
from engine.rules import access
from engine.rules.forms import text_input
from engine.services.cases import find_case
from engine.services.procedures import start_procedure
from engine.store.models import Case
from engine.store.procedure_models import AssessmentLink, ProjectApproval

PROCESS_ID = "stability_assessment"
CATEGORY = "stability_assessment"
PROJECT_KINDS = ("demolition", "restructuring", "project", "policy")
OWNER_KINDS = ("city_department", "district_department", "street", "district", "city")
# Dispute categories that may reference an assessment (routing.toml keys).
LINKABLE_CATEGORIES = ("demolition", "enterprise")
ALLOWING = ("proceed", "proceed_with_measures")
OWNER_ROLES = frozenset({"handler", "dispatcher", "leader"})
APPROVERS = frozenset({"leader"})
OUTPUTS = ("project_kind", "owner_unit", "assessor", "opinion_units", "opinions", "hearing_kind", "respondents",
           "support_percent", "risk_level", "assessment_decision", "measures", "measures_done",
           "assessment_finished")



def start_assessment(rt, form: dict, actor: str | None = None, *, user=None) -> dict:
    form = form if isinstance(form, dict) else {}
    errors: dict = {}
    if user is not None and (user.unit_kind not in OWNER_KINDS or not user.roles & OWNER_ROLES):
        raise Forbidden(f"{user.username} does not work for a project's owner unit (a department, district or "
                        "street office): a stability assessment is not a citizen's request")
    owner = form.get("owner_unit", user.unit_code if user is not None else None)
    unit = rt.tables.units.get(owner) if isinstance(owner, str) else None
    if unit is None or not unit.active or unit.kind not in OWNER_KINDS:
        errors["owner_unit"] = [f"must be an active unit of kind {', '.join(OWNER_KINDS)} (the project's owner)"]
    if user is not None:
        access.require_writer(user)
        if user.unit_code != owner:
            raise Forbidden(f"{user.username} works for {user.unit_code}, not the owner unit {owner}")
        actor = user.username
    title = text_input(form, "title", errors, 200)
    description = text_input(form, "description", errors, 5000)
    kind = form.get("project_kind")
    if kind not in PROJECT_KINDS:
        errors["project_kind"] = [f"must be one of: {', '.join(PROJECT_KINDS)}"]
    community = form.get("community")
    if community not in rt.tables.org.communities():
        errors["community"] = ["must be the code of the active community where the project is"]
    assessor = form.get("assessor")
    if not isinstance(assessor, dict) or not isinstance(assessor.get("name"), str) or not assessor["name"].strip():
        errors["assessor"] = ["the third-party assessor: {name, credit_code?, contact?}"]
        assessor = None
    else:
        assessor = {k: str(assessor[k]).strip()[:200] for k in ("name", "credit_code", "contact") if assessor.get(k)}
    if errors:
        raise InvalidInput("the assessment request has invalid fields", errors=errors)
    record = {"title": title, "description": description, "category": CATEGORY, "channel": "owner",
              "community": community, "status": "assessing", "level": "assessment", "current_unit": owner}
    data = {"category": CATEGORY, "channel": "owner", "community": community, "owner_unit": owner,
            "project_kind": kind, "assessor": assessor}
    return start_procedure(rt, PROCESS_ID, record, data, actor or "system",
                           payload={"owner_unit": owner, "assessor": assessor})


def _assessment(rt, session, case_no, user=None, field="assessment") -> tuple[Case, dict]:
    try:
        case = find_case(rt, session, case_no, user)
    except Exception:
        raise InvalidInput(f"no assessment {case_no}", errors={field: [f"no stability assessment {case_no}"]}) \
            from None
    definition = rt.definitions.get(session, case.definition_id)
    if definition.process_id != PROCESS_ID:
        raise InvalidInput(f"case {case_no} is not a stability assessment",
                           errors={field: [f"case {case_no} is not a stability risk assessment"]})
    data = CaseOperation(rt, session, case, "reader", definition).workflow_data()
    return case, data


def assessment_view(rt, case_no: str, user=None) -> dict:
    """The assessment's record; a case that is no assessment does not exist here (CaseNotFound)."""
    with rt.db.read() as session:
        case = find_case(rt, session, case_no, user)
        if rt.definitions.get(session, case.definition_id).process_id != PROCESS_ID:
            raise CaseNotFound(f"case {case_no} is not a stability risk assessment")
        case, data = _assessment(rt, session, case.case_no, user)
        approval = session.scalar(select(ProjectApproval).where(ProjectApproval.assessment_case_id == case.id))
        links = session.scalars(select(Case.case_no).join(AssessmentLink, AssessmentLink.case_id == Case.id)
                                .where(AssessmentLink.assessment_case_id == case.id).order_by(Case.case_no)).all()
        return {"case_no": case.case_no, "title": case.title, "status": case.status,
                **{k: data.get(k) for k in OUTPUTS},
                "approved": approval is not None,
                "approved_at": approval.approved_at.isoformat() if approval else None,
                "approved_by": approval.approved_by if approval else None, "linked_cases": list(links)}


def approve_project(rt, case_no: str, actor: str | None = None, note: str | None = None, *, user=None) -> dict:
    """Mark the assessed project approved: only after a finished assessment whose decision allows it.

    Given a `user`, they must be a leader (the approving authority's signature)."""
    if user is not None:
        if not user.roles & APPROVERS:
            raise Forbidden(f"{user.username} is not a leader: only a leader approves a project")
        actor = user.username
    with rt.db.write() as session:
        case, data = _assessment(rt, session, case_no, user)
        if not data.get("assessment_finished"):
            raise InvalidInput("the stability assessment is not finished", errors={
                "assessment": [f"assessment {case.case_no} is not finished (status {case.status}): no approval "
                               "before the 稳评 ends"]})
        if data.get("assessment_decision") not in ALLOWING:
            raise InvalidInput("the stability assessment does not allow the project", errors={
                "assessment": [f"assessment {case.case_no} decided {data.get('assessment_decision')}"]})
        if session.scalar(select(ProjectApproval.id).where(ProjectApproval.assessment_case_id == case.id)):
            raise Conflict(f"the project of assessment {case.case_no} is approved already")
        now = clock.now()
        session.add(ProjectApproval(assessment_case_id=case.id, approved_by=actor or "system", approved_at=now,
                                    note=note))
        try:
            session.flush()
        except IntegrityError:
            raise Conflict(f"the project of assessment {case.case_no} is approved already") from None
        return {"case_no": case.case_no, "approved": True, "approved_at": now.isoformat(),
                "approved_by": actor or "system", "decision": data.get("assessment_decision")}


def link_case(rt, case_no: str, dispute_case_no: str, actor: str | None = None, *, user=None) -> dict:
    """A demolition or enterprise-restructuring dispute references the assessment of its project."""
    if user is not None:
        if not user.roles & OWNER_ROLES:
            raise Forbidden(f"{user.username} may not link cases to an assessment")
        actor = user.username
    with rt.db.write() as session:
        case, _ = _assessment(rt, session, case_no, user)
        try:
            dispute = find_case(rt, session, dispute_case_no, user)
        except Exception:
            raise InvalidInput("no such case", errors={"case_no": [f"no case {dispute_case_no}"]}) from None
        if dispute.category not in LINKABLE_CATEGORIES:
            raise InvalidInput("only demolition and restructuring cases reference an assessment", errors={
                "case_no": [f"case {dispute.case_no} is {dispute.category}, not one of "
                            f"{', '.join(LINKABLE_CATEGORIES)}"]})
        exists = session.scalar(select(AssessmentLink.id).where(AssessmentLink.case_id == dispute.id,
                                                                AssessmentLink.assessment_case_id == case.id))
        if exists is None:
            session.add(AssessmentLink(case_id=dispute.id, assessment_case_id=case.id, linked_by=actor or "system",
                                       linked_at=clock.now()))
        return {"case_no": dispute.case_no, "assessment": case.case_no}
