"""The data a dispute case's workflow starts with: one place for the variables the procedures read.

The category procedures (processes/dispute_*.bpmn) and their shared sub-procedures
read these in gateways and scripts before any form sets them; `engine.services.cases`
seeds a new case with them and `engine.core.lint` checks the diagrams' expressions
against the same names, so the two cannot drift apart.
"""
from __future__ import annotations

# Outcomes the shared sub-procedures hand back to their caller, and the handling state.
HANDLING_DEFAULTS = {
    "routed_unit": None, "assign_unit": None, "rework_count": 0, "return_count": 0, "ladder_index": 0,
    "mediation_result": None, "mediation_note": None, "handling_outcome": None, "ladder_outcome": None,
    "evaluation_outcome": None, "handling_entry": "handle", "transfer_count": 0, "co_units": [],
    "co_results": [], "co_mode": None, "reinspection_count": 0, "legal_review_count": 0,
    "mediation_outcome": None, "agreement_text": None, "responsible_person": None, "assign_count": 0,
    "mediation_body": None, "docking_count": 0,
}


def initial_data(category: str, channel: str, community: str, time_limit_class: str | None, rework: dict) -> dict:
    """The workflow data of a new dispute case; `rework` is time_limits.toml [rework] (the counts' caps)."""
    return {
        "category": category, "channel": channel, "community": community, **HANDLING_DEFAULTS,
        "time_limit_class": time_limit_class, "max_reworks": rework["max_reworks"],
        "max_returns": rework["max_returns"], "max_transfers": rework.get("max_transfers", 2),
    }
