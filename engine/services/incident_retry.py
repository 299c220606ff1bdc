"""Retrying an incident: re-attempt the failed work once, now, after a fix or a migration.

`RETRY` maps an incident's kind to the function that re-attempts its work
(`retry(rt, incident, actor) -> str`, the resolution text; raising means it
failed again). A new kind of asynchronous work (notification delivery) adds
one line here. Success resolves the incident (noted on the case); failure
bumps its tries and last seen, and the incident stays open.
"""
from __future__ import annotations

from sqlalchemy import select

from engine import clock
from engine.errors import Conflict, NotFound, OrganisationGap
from engine.services import cases
from engine.services.incidents import bump_after_retry, incident_view, load_incident, require_reader, resolve_incident
from engine.store.incident_models import OPEN
from engine.store.models import Case
from engine.store.timer_models import CaseTimer


class RetryFailed(Exception):
    """The retried work did not fail with an exception, but did not happen either."""


def retry_timer(rt, incident, actor: str) -> str:
    """Fire the timer the incident holds (or, if it is gone, the case's other due timers) under the case lock."""
    for timer_id in _timers_to_retry(rt, incident):
        outcome = cases.fire_timer(rt, timer_id, actor, retry_of=incident.id)  # its events say timer:<actor>
        if outcome == "fired":
            return "retried: the timer fired"
        if outcome != "gone":
            raise RetryFailed(f"the timer did not fire ({outcome})")
    with rt.db.write() as session:  # nothing of the case waits any more: fired, cancelled or migrated away
        resolve_incident(session, incident.id, actor, clock.now(),
                         "retried: the timer no longer waits (it fired, was cancelled or was replaced)")
    return "gone"


def _timers_to_retry(rt, incident) -> list[int]:
    own = int(incident.source.split(":", 1)[1]) if incident.source.startswith("timer:") else None
    with rt.db.read() as session:
        held = session.scalars(select(CaseTimer.id).where(CaseTimer.incident_id == incident.id)
                               .order_by(CaseTimer.due_at, CaseTimer.id)).all()
        due = session.scalars(select(CaseTimer.id).where(CaseTimer.case_id == incident.case_id,
                                                         CaseTimer.due_at <= clock.now())
                              .order_by(CaseTimer.due_at, CaseTimer.id)).all() if incident.case_id else []
    ordered = [own] if own is not None else []
    return list(dict.fromkeys(ordered + list(held) + list(due)))


def retry_no_unit(rt, incident, actor: str) -> str:
    """A timer's gap: fire it again. A request's gap: check that the lane now has a unit for the case."""
    if incident.source.startswith("timer:"):
        return retry_timer(rt, incident, actor)
    lane = (incident.details or {}).get("lane")
    with rt.db.write() as session:
        case = session.get(Case, incident.case_id) if incident.case_id is not None else None
        if case is not None:
            gap = rt.tables.unit_gap(rt.tables.lanes.get(lane), case.community_code, case.routed_unit)
            if gap is not None:
                raise OrganisationGap(f"user task {incident.element} (lane {lane}) would still have no unit: {gap}",
                                      element=incident.element, lane=lane, gap=gap)
        resolve_incident(session, incident.id, actor, clock.now(),
                         f"retried: lane {lane} has a unit now; the refused action can be repeated")
    return "resolved"


def retry_notification(rt, incident, actor: str) -> str:
    """A dead notification: send it again (the same idempotency key, its attempts counted afresh)."""
    from engine.services.notifications import requeue_message

    message_id = int(incident.source.split(":", 1)[1])
    with rt.db.write() as session:
        requeue_message(session, message_id)
        resolve_incident(session, incident.id, actor, clock.now(),
                         f"retried: outbox message {message_id} is queued again with its key")
    return "resolved"


RETRY = {
    "timer": retry_timer,
    "no_unit": retry_no_unit,
    "notification": retry_notification,
}


def retry_incident(rt, user, incident_id: int, actor: str | None = None) -> dict:
    """Re-attempt an open incident's work once now: {"outcome": "resolved" | "failed", "incident": ...}."""
    require_reader(user)
    actor = user.username if user is not None else (actor or "cli")
    with rt.db.read() as session:
        incident, _ = load_incident(session, incident_id)
        session.expunge(incident)  # a plain snapshot for the retriers, loaded before the read ends
    if incident.status != OPEN:
        raise Conflict(f"incident {incident_id} is already {incident.status}")
    retry = RETRY.get(incident.kind)
    if retry is None:
        raise NotFound(f"incidents of kind {incident.kind!r} cannot be retried here")
    error = None
    try:
        retry(rt, incident, actor)
    except Exception as exc:  # any failure of the retried work is the incident's, recorded, never a crash
        bump_after_retry(rt, incident_id, exc)
        error = exc
    with rt.db.read() as session:
        view = incident_view(*load_incident(session, incident_id))
    outcome = "resolved" if view["status"] != OPEN else "failed"
    return {"outcome": outcome, "error": view["error"] if error is not None else None, "incident": view}
