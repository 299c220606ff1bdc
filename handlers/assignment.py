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
    ctx.notify("unit", unit, f"【矛盾联调】案件{ctx.case.case_no}经协调交由贵单位办理，请及时签收。")
    return {"unit": unit}
