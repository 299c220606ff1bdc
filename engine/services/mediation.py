"""Mediation docking (调解对接) on its own: a unit hands a dispute to a mediation body.

`hand_to_mediation` starts processes/mediation_docking.bpmn as a case of its
own (the same diagram a category procedure calls through a call activity):
the handing unit names the mediation body (a unit whose kind ends in
`_mediation`), the category, the community and what the dispute is about. The
body accepts or declines, holds sessions, and ends with an agreement (with
its amount and an optional judicial confirmation by the court) or a failure
(back to the handing unit, or guidance to litigation or arbitration).
`mediation_record` reads the outcome back from the case's data.
"""
from __future__ import annotations

from engine.core.operation import CaseOperation
from engine.errors import CaseNotFound, Forbidden, InvalidInput
from engine.rules.forms import text_input
from engine.rules.organisation import is_mediation_kind
from engine.services.cases import find_case
from engine.services.procedures import start_procedure

PROCESS_ID = "mediation_docking"
HANDING_ROLES = frozenset({"handler", "dispatcher", "leader"})
OUTPUTS = ("mediation_outcome", "agreement_amount", "judicial_confirmation", "mediation_sessions",
           "mediation_kind", "mediation_body", "court_body", "mediation_failure", "agreement_text")



def hand_to_mediation(rt, form: dict, actor: str | None = None, *, user=None) -> dict:
    """Start a docking case; bad fields are refused together, naming each, and nothing is stored."""
    if user is not None:
        if not user.roles & HANDING_ROLES:
            raise Forbidden(f"{user.username} is no handler, dispatcher or leader of a unit that could hand a "
                            "case on")
        actor = user.username
    form = form if isinstance(form, dict) else {}
    errors: dict = {}
    body = form.get("mediation_body")
    unit = rt.tables.units.get(body) if isinstance(body, str) else None
    if unit is None or not unit.active or not is_mediation_kind(unit.kind):
        errors["mediation_body"] = ["must be the code of an active mediation body: "
                                    + ", ".join(rt.tables.org.mediation_bodies())]
    title = text_input(form, "title", errors, 200)
    description = text_input(form, "description", errors, 5000)
    category = form.get("category")
    if category not in rt.tables.routes:
        errors["category"] = [f"must be one of: {', '.join(rt.tables.routes)}"]
    community = form.get("community")
    if community not in rt.tables.org.communities():
        errors["community"] = ["must be the code of an active community"]
    handing = form.get("handing_unit", user.unit_code if user is not None else None)
    if handing is not None and handing not in rt.tables.units:
        errors["handing_unit"] = ["must be a unit code"]
    if errors:
        raise InvalidInput("the hand-off has invalid fields", errors=errors)
    record = {"title": title, "description": description, "category": category, "channel": "referral",
              "community": community, "level": "mediation", "current_unit": unit.code,
              "routed_unit": handing}  # the handing unit keeps the case in its scope (it gets it back on failure)
    data = {"category": category, "channel": "referral", "community": community, "mediation_body": unit.code,
            "handing_unit": handing, "routed_unit": handing}
    return start_procedure(rt, PROCESS_ID, record, data, actor or "system",
                           payload={"mediation_body": unit.code, "handing_unit": handing})


def mediation_record(rt, case_no: str, user=None) -> dict:
    """The docking's outputs as the contract names them, read from the case's workflow data."""
    with rt.db.read() as session:
        case = find_case(rt, session, case_no, user)
        definition = rt.definitions.get(session, case.definition_id)
        op = CaseOperation(rt, session, case, "reader", definition)
        data = op.workflow_data()
        if "mediation_body" not in data:
            raise CaseNotFound(f"case {case_no} was never handed to a mediation body")
        return {"case_no": case.case_no, "status": case.status, **{k: data.get(k) for k in OUTPUTS}}
