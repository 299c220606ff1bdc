"""Handling as the seeds run it: sign-for, refusal and transfer, co-handling, joint reception.

The service tasks of the shared sub-procedures processes/unit_sign_for.bpmn,
processes/unit_handling.bpmn and processes/co_handling.bpmn, and of the
petition procedure's joint reception (联合接访):

* `sign_for_case` (签收): an accepting unit names the section and the person
  responsible, a user of the unit (validated when the unit has user accounts);
  the unit becomes the first-handling unit (首办单位). A refusing unit (退回)
  gives its reason and, if it knows, the right unit; the refusal is an event
  and the routing desk is told. Once the case has been transferred
  `max_transfers` times (time_limits.toml [rework]) the unit holding it may
  not refuse: it keeps the case as first-handling unit (首办负责).
* `transfer_case` (转办): the routing desk sends the case on to another unit.
* `add_co_units` (协办): the lead unit brings in co-handling units, each of
  which then signs for, and handles, its own part in parallel.
* `co_sign_for_case`: a co-handler signs for its part, or refuses it.
* `record_joint_reception`: the joint reception's conclusion becomes the
  handling result that the leader's single signature approves.

Refusing bad input raises `InvalidForm` naming the field: the task stays open
and nothing changes.
"""
from __future__ import annotations

from engine.errors import InvalidForm


def _unit_name(ctx, code: str | None) -> str:
    unit = ctx.tables.units.get(code) if code else None
    return unit.name if unit is not None else (code or "")


def _active_unit(ctx, code) -> bool:
    return isinstance(code, str) and ctx.tables.org.is_active(code)


def _check_person(ctx, unit: str, person, field: str = "responsible_person") -> None:
    """The responsible person is a handler of the unit, when the unit has user accounts at all."""
    if not isinstance(person, str) or not person.strip():
        raise InvalidForm("the sign-for names no responsible person", errors={field: ["is required"]})
    if not ctx.unit_users(unit, None):
        return  # a unit without accounts yet: the name is recorded as given, the task stays unassigned
    handlers = ctx.unit_users(unit, "handler")
    if person not in handlers:
        raise InvalidForm("the responsible person is not a handler of the unit", errors={
            field: [f"{person!r} is not an active handler of {unit}; choose one of: {', '.join(handlers) or 'none'}"]})


def _check_suggestion(ctx, data: dict, own_unit: str | None) -> str | None:
    suggested = data.get("suggested_unit")
    if suggested in (None, ""):
        return None
    if not _active_unit(ctx, suggested) or suggested == own_unit:
        raise InvalidForm("the suggested unit is not another active unit",
                          errors={"suggested_unit": [f"{suggested!r} is not another active unit of the organisation"]})
    return suggested


def sign_for_case(ctx, params: dict, data: dict) -> dict:
    unit = data.get("routed_unit") or ctx.case.routed_unit
    if data.get("decision") == "accept":
        _check_person(ctx, unit, data.get("responsible_person"))
        ctx.case.first_handling_unit = unit
        data["first_handling_unit"] = unit
        ctx.record("case_signed", {"unit": unit, "section": data.get("responsible_section"),
                                   "person": data.get("responsible_person")})
        return {"decision": "accept", "unit": unit, "person": data.get("responsible_person")}
    transfers, cap = int(data.get("transfer_count") or 0), int(data.get("max_transfers") or 0)
    if transfers >= cap:
        raise InvalidForm("this unit is the first-handling unit and cannot refuse the case", errors={"decision": [
            f"the case has been transferred {transfers} times (the limit is {cap}): the unit holding it "
            "keeps it as first-handling unit (首办负责) and coordinates the others"]})
    suggested = _check_suggestion(ctx, data, unit)
    refusal = {"unit": unit, "reason": data.get("refuse_reason"), "suggested_unit": suggested}
    data["last_refusal"] = refusal
    ctx.record("case_refused", refusal)
    desk = ctx.routing_desk()
    if desk:
        ctx.notify("unit", desk, kind="refused", params={
            "case_no": ctx.case.case_no, "unit": _unit_name(ctx, unit), "reason": data.get("refuse_reason") or "",
            "suggested": _unit_name(ctx, suggested) if suggested else "未建议"})
    return {"decision": "refuse", **refusal}


def transfer_case(ctx, params: dict, data: dict) -> dict:
    target, previous = data.get("route_to"), data.get("routed_unit")
    if not _active_unit(ctx, target) or target == previous:
        raise InvalidForm("the case cannot be transferred to that unit",
                          errors={"route_to": [f"{target!r} is not another active unit of the organisation"]})
    count = int(data.get("transfer_count") or 0) + 1
    data.update(transfer_count=count, routed_unit=target, decision=None)
    ctx.case.routed_unit = target
    ctx.case.transfers = count
    ctx.record("case_transferred", {"from_unit": previous, "to_unit": target, "transfers": count,
                                    "note": data.get("reroute_note")})
    ctx.notify("unit", target, kind="arrival", params={"case_no": ctx.case.case_no, "category": "转办",
                                                        "unit": _unit_name(ctx, target)})
    cap = int(data.get("max_transfers") or 0)
    if count >= cap:
        centre = ctx.supervision_centre()
        if centre:
            ctx.notify("unit", centre, kind="first_handling", params={
                "case_no": ctx.case.case_no, "unit": _unit_name(ctx, target), "transfers": str(count)})
    return {"unit": target, "transfers": count, "first_handling": count >= cap}


def add_co_units(ctx, params: dict, data: dict) -> dict:
    lead = data.get("routed_unit") or ctx.case.routed_unit
    units = data.get("co_units") or []
    bad = [u for u in units if not _active_unit(ctx, u) or u == lead]
    if bad:
        raise InvalidForm("a co-handling unit must be another active unit", errors={"co_units": [
            f"{u!r} is {'the lead unit itself' if u == lead else 'not an active unit of the organisation'}"
            for u in bad]})
    data["co_results"] = []
    known = list(ctx.case.co_units or [])
    ctx.case.co_units = known + [u for u in units if u not in known]
    ctx.record("co_units_added", {"lead_unit": lead, "units": list(units), "mode": data.get("co_mode") or "handling"})
    for unit in units:
        ctx.notify("unit", unit, kind="co_handling", params={
            "case_no": ctx.case.case_no, "lead": _unit_name(ctx, lead), "unit": _unit_name(ctx, unit)})
    return {"units": list(units)}


def co_sign_for_case(ctx, params: dict, data: dict) -> dict:
    unit = data.get("co_unit")
    if data.get("decision") == "accept":
        _check_person(ctx, unit, data.get("responsible_person"))
        reception = data.get("co_mode") == "reception"
        if reception:  # a unit taking part in a joint reception: its sign-for is its attendance
            data["co_result"] = {"unit": unit, "status": "attending", "person": data.get("responsible_person")}
        ctx.record("co_unit_signed", {"unit": unit, "person": data.get("responsible_person"),
                                      "mode": "reception" if reception else "handling"})
        return {"decision": "accept", "unit": unit}
    suggested = _check_suggestion(ctx, data, unit)
    data["co_result"] = {"unit": unit, "status": "refused", "reason": data.get("refuse_reason"),
                         "suggested_unit": suggested}
    ctx.record("case_refused", {"unit": unit, "reason": data.get("refuse_reason"), "suggested_unit": suggested,
                                "co_handling": True})
    lead = ctx.case.first_handling_unit or ctx.case.routed_unit
    if lead:
        ctx.notify("unit", lead, kind="refused", params={
            "case_no": ctx.case.case_no, "unit": _unit_name(ctx, unit), "reason": data.get("refuse_reason") or "",
            "suggested": _unit_name(ctx, suggested) if suggested else "未建议"})
    return {"decision": "refuse", "unit": unit}


def record_joint_reception(ctx, params: dict, data: dict) -> dict:
    data.update(result=data.get("conclusion"), handling_entry="approve", co_mode=None)
    held = {"date": data.get("reception_date"), "place": data.get("reception_place"),
            "lawyer": {"name": data.get("lawyer_name"), "organisation": data.get("lawyer_org")},
            "units": [r.get("unit") for r in data.get("co_results") or [] if r.get("status") == "attending"],
            "participants": data.get("participants"), "conclusion": data.get("conclusion")}
    ctx.record("joint_reception_held", held)
    return held
