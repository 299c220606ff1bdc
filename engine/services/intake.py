"""Intake from integrated systems (一门受理 across channels): the hotlines, 110, the grid app.

A client system (kind `intake`, `engine.services.clients`) submits a case
with its own reference, the idempotency key. The case goes through the same
`start_case` as every other door, so it gets the same checks, events and
tracking-code message; it carries the system's channel and is placed by the
first-contact rule (`engine.rules.grids`). The (system, reference) pair is
unique in the database: a retried submission — even one racing the first —
answers the case already made instead of making a second one.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from engine.services.cases import start_case
from engine.services.clients import Client
from engine.store.client_models import CaseSource
from engine.store.models import Case


def _unit(tables, code: str | None) -> dict | None:
    unit = tables.units.get(code) if code else None
    return {"code": code, "name": unit.name if unit else code} if code else None


def intake_answer(rt, case: Case, source: CaseSource) -> dict:
    """What the source system learns: the case number, where it is, how it was placed — no personal data."""
    return {"case_no": case.case_no, "external_ref": source.external_ref, "status": case.status,
            "channel": case.channel, "community": _unit(rt.tables, case.community_code),
            "placement": source.placement, "grid": case.grid, "current_unit": _unit(rt.tables, case.current_unit),
            "accepted_at": case.created_at.isoformat()}


def _existing(rt, client_id: int, external_ref: str) -> dict | None:
    with rt.db.read() as session:
        found = session.execute(select(Case, CaseSource).join(CaseSource, CaseSource.case_id == Case.id)
                                .where(CaseSource.client_id == client_id,
                                       CaseSource.external_ref == external_ref)).first()
        return intake_answer(rt, *found) if found else None


def submit_case(rt, client: Client, form: dict) -> tuple[dict, bool]:
    """Register a case sent by a client system; (answer, created). A known reference answers its case."""
    ref = form["external_ref"]
    known = _existing(rt, client.id, ref)
    if known is not None:
        return known, False
    intake = {k: form[k] for k in ("title", "description", "category", "reporter", "location") if k in form}
    intake["channel"] = client.channel
    source = {"client_id": client.id, "external_ref": ref, "token": None, "media_url": form.get("media_url")}
    try:
        start_case(rt, intake, f"system:{client.name}", source=source)
    except IntegrityError:
        # Another submission with the same reference committed first: it made the case.
        known = _existing(rt, client.id, ref)
        if known is None:
            raise
        return known, False
    return _existing(rt, client.id, ref), True
