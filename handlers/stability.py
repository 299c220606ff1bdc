"""Stability risk assessment (社会稳定风险评估, 稳评): the service tasks of processes/stability_assessment.bpmn.

`open_assessment` names the units of the place that must each give an
opinion: the district's coordination office, the street office and the
community where the project is (those the tree has, in that order).
`review_assessment` checks the coordination office's review: a high risk
may not simply proceed, and "proceed with measures" lists its measures, one
a line, each then tracked to completion by the owner unit.
"""
from __future__ import annotations

from engine.errors import InvalidInput

DECISIONS = ("proceed", "proceed_with_measures", "stop")
ALLOWING = ("proceed", "proceed_with_measures")


def open_assessment(ctx, params: dict, data: dict) -> dict:
    community = data.get("community")
    org = ctx.tables.org
    units = [org.level_unit("district_coordination", community), org.street_of(community), community]
    data["opinion_units"] = [u for i, u in enumerate(units) if u and u not in units[:i]]
    data.update(opinions=[], measures=[], measures_done=[], risk_level=None, assessment_decision=None,
                assessment_finished=False)
    return {"opinion_units": data["opinion_units"]}


def review_assessment(ctx, params: dict, data: dict) -> dict:
    level, decision = data.get("risk_level"), data.get("decision")
    if level == "high" and decision == "proceed":
        raise InvalidInput("a high risk cannot proceed without measures",
                           errors={"decision": ["a high risk must proceed_with_measures or stop"]})
    lines = [ln.strip() for ln in str(data.get("measures_text") or "").splitlines() if ln.strip()]
    if decision == "proceed_with_measures" and not lines:
        raise InvalidInput("proceeding with measures needs measures",
                           errors={"measures_text": ["list the measures, one a line"]})
    data["measures"] = [{"no": n, "text": text} for n, text in enumerate(lines, 1)] \
        if decision == "proceed_with_measures" else []
    data["assessment_decision"] = decision
    return {"risk_level": level, "decision": decision, "measures": len(data["measures"])}
