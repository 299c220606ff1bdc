"""`assign_case` (交办): a coordination level assigns the case to a unit, back to sign-for."""
from __future__ import annotations

from engine.errors import InvalidForm


def assign_case(ctx, params: dict, data: dict) -> dict:
    unit = params.get("unit") or data.get("assign_unit")
    if not unit or not ctx.tables.org.is_active(unit):
        raise InvalidForm("the case cannot be assigned to that unit",
                          errors={"assign_unit": [f"{unit!r} is not an active unit of the organisation"]})
    data["routed_unit"] = unit
    ctx.case.routed_unit = unit
    ctx.notify("unit", unit, kind="arrival", params={"case_no": ctx.case.case_no, "category": "协调交办", "unit": _unit_name(ctx, unit)})
    return {"unit": unit}


def _unit_name(ctx, code: str) -> str:
    unit = ctx.tables.units.get(code)
    return unit.name if unit is not None else code
