"""Mediation docking (调解对接): the service tasks of processes/mediation_docking.bpmn.

`dock_mediation` takes the hand-off: the case data names the mediation body
(`mediation_body`, a unit whose kind ends in `_mediation`); an unknown,
inactive or non-mediation unit is refused, naming the field, and nothing
changes. `start_mediation_clock` starts the body's own time limit (time_limits.toml
[mediation_bodies], by the body's kind) when it accepts the case.
`record_mediation_session` appends one session to `mediation_sessions`
(date, participants, the medical committee's 1 doctor + 1 lawyer + 1 mediator
team, notes, result and, at the traffic centre, which of its four channels
行政/人民/司法/仲裁 settled it). `find_confirmation_court` names the court body
that confirms an agreement (司法确认): the court mediation room nearest the
mediation body in the unit tree.
"""
from __future__ import annotations

from datetime import date

from engine.errors import InvalidInput
from engine.rules.deadlines import step_days
from engine.rules.organisation import is_mediation_kind

SESSION_FIELDS = ("session_date", "participants", "doctor", "lawyer", "mediator", "session_notes", "four_in_one")
MEDICAL_TEAM = ("doctor", "lawyer", "mediator")
# The traffic centre's four channels and the outcome each may give.
FOUR_IN_ONE = {"administrative": ("agreement",), "people": ("agreement",),
               "judicial": ("agreement", "litigation"), "arbitration": ("arbitration",)}


def dock_mediation(ctx, params: dict, data: dict) -> dict:
    code = data.get("mediation_body")
    unit = ctx.tables.units.get(code) if isinstance(code, str) else None
    if unit is None or not unit.active or not is_mediation_kind(unit.kind):
        bodies = ", ".join(ctx.tables.org.mediation_bodies()) or "none"
        raise InvalidInput(f"mediation_body {code!r} is not an active mediation body",
                           errors={"mediation_body": [f"must be the code of an active mediation body: {bodies}"]})
    data.update(mediation_kind=unit.kind, mediation_sessions=[], session_count=0, session_result=None,
                max_mediation_sessions=ctx.tables.time_limits["rework"].get("max_mediation_sessions", 8),
                mediation_outcome=None, agreement_amount=None, judicial_confirmation=False, court_body=None,
                mediation_due=None)
    return {"mediation_body": unit.code, "kind": unit.kind}


def start_mediation_clock(ctx, params: dict, data: dict) -> dict:
    days = step_days(ctx.tables.time_limits, "mediation_body", data.get("mediation_kind"))
    data["mediation_due"] = ctx.calendar.add_working_days(ctx.now, days).iso()
    return {"days": days, "due_at": data["mediation_due"]}


def _refuse(field: str, reason: str):
    raise InvalidInput(f"the session record is incomplete: {field} {reason}", errors={field: [reason]})


def record_mediation_session(ctx, params: dict, data: dict) -> dict:
    kind, result = data.get("mediation_kind"), data.get("session_result")
    try:
        date.fromisoformat(str(data.get("session_date") or ""))
    except ValueError:
        _refuse("session_date", "must be a date, YYYY-MM-DD")
    if kind == "medical_mediation":  # the 1 doctor + 1 lawyer + 1 mediator team sits on every session
        missing = [name for name in MEDICAL_TEAM if not data.get(name)]
        if missing:
            reason = "is required: the medical committee sits as 1 doctor + 1 lawyer + 1 mediator"
            raise InvalidInput(f"the session record is incomplete: {', '.join(missing)} missing",
                               errors={name: [reason] for name in missing})
    channel = data.get("four_in_one")
    if kind == "traffic_mediation" and result != "continue":
        if channel not in FOUR_IN_ONE:
            _refuse("four_in_one", f"is required at the traffic centre: one of {', '.join(FOUR_IN_ONE)}")
        if result not in FOUR_IN_ONE[channel]:
            _refuse("four_in_one", f"{channel} cannot give {result}: it gives {', '.join(FOUR_IN_ONE[channel])}")
    record = {"no": int(data.get("session_count") or 0) + 1, "date": data.get("session_date"),
              "participants": data.get("participants"), "notes": data.get("session_notes"), "result": result,
              "recorded_at": ctx.now.isoformat()}
    if any(data.get(n) for n in MEDICAL_TEAM):
        record["team"] = {n: data.get(n) for n in MEDICAL_TEAM}
    if channel:
        record["four_in_one"] = channel
    for name in SESSION_FIELDS:
        # The next session's form starts empty. Cleared, not removed: a replay applies the recorded change.
        data[name] = None
    data["mediation_sessions"] = list(data.get("mediation_sessions") or []) + [record]
    data["session_count"] = record["no"]
    return {"session": record["no"], "result": result}


def find_confirmation_court(ctx, params: dict, data: dict) -> dict:
    court = ctx.tables.org.nearest_of_kind(data.get("mediation_body"), "court_mediation")
    if court is None:
        raise InvalidInput("no court mediation body can confirm the agreement",
                           errors={"judicial_confirmation": ["no active court mediation body (court_mediation) "
                                                             "in the organisation"]})
    data["court_body"] = court
    return {"court_body": court}


def choose_mediation_body(ctx, params: dict, data: dict) -> dict:
    """Docking by the routing table (routing.toml `mediation`): the body of that kind nearest the case's community."""
    route = ctx.tables.route(data.get("category"))
    kind = params.get("kind") or route.mediation
    start = data.get("community") or ctx.case.community_code
    body = ctx.tables.org.nearest_of_kind(start, kind) if kind else None
    if body is None:
        raise InvalidInput(f"no active mediation body of kind {kind!r} for the case's community",
                           errors={"mediation_body": [f"add an active unit of kind {kind!r} to the organisation "
                                                      "(flask org check)"]})
    data.update(mediation_body=body, handing_unit=data.get("routed_unit"))
    ctx.notify("unit", body, kind="arrival", params={"case_no": ctx.case.case_no, "category": route.name,
                                                      "unit": ctx.tables.units[body].name})
    return {"mediation_body": body, "kind": kind}
