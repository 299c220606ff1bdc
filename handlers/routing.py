"""`route_case`: flat dispatch of a case, by category, straight to the responsible unit.

The rule lives in `processes/routing.toml`; this handler only applies it.
"""
from __future__ import annotations


class RoutingError(ValueError):
    pass


def route_case(ctx, params: dict, data: dict) -> dict:
    category = params.get("category") or data.get("category")
    try:
        route = ctx.tables.route(category)
    except KeyError:
        raise RoutingError(f"no route for category {category!r} in routing.toml") from None
    unit = route.unit
    if unit == "@street":
        unit = ctx.tables.street_of(data.get("community") or ctx.case.community_code)
        if unit is None:
            raise RoutingError(f"community {data.get('community')!r} has no street office")
    if not ctx.tables.org.is_active(unit):
        raise RoutingError(f"category {category!r} routes to {unit!r}, which is not an active unit "
                           f"(see flask org check)")
    data["routed_unit"] = unit
    data["time_limit_class"] = route.time_limit_class
    ctx.case.routed_unit = unit
    ctx.case.time_limit_class = route.time_limit_class
    ctx.notify("unit", unit, kind="arrival", params={"case_no": ctx.case.case_no, "category": route.name, "unit": _unit_name(ctx, unit)})
    return {"unit": unit, "category": category, "time_limit_class": route.time_limit_class}


def _unit_name(ctx, code: str) -> str:
    unit = ctx.tables.units.get(code)
    return unit.name if unit is not None else code
