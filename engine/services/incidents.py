"""Incidents: asynchronous work that failed for good, recorded for administrators and designers.

A timer whose firing fails (a handler raising, a script refused, a task that
would have no unit) is not retried forever nor dropped: the firing rolls back,
and `record_timer_failure` notes the attempt on the timer row in a separate
short transaction (tries, and the next attempt after a backoff of 30 s, 2 min,
10 min, 1 h by default). After the last try (5 by default) it opens an
incident with `open_or_bump_incident` and holds the case's due timers: the
workers leave them alone until a person retries (`engine.services.
incident_retry`). A synchronous request that would create a task with no unit
is refused (`OrganisationGap`) and recorded here the same way
(`records_gaps`). When a migration replaced a held timer, the next firing
of the case resolves the incident (`resolve_replaced`). Opening and resolving an incident are notes in the case's
event log (`incident_opened`, `incident_resolved`), which replay skips.

Settings (environment): TIMER_RETRY_DELAYS (seconds, comma-separated,
default "30,120,600,3600"; the last delay repeats), TIMER_MAX_TRIES (default 5).
"""
from __future__ import annotations

import functools
import inspect
import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from engine import clock
from engine.errors import CaseError, Forbidden, NotFound, OrganisationGap
from engine.services.search import page_args, page_view, paginate
from engine.store.incident_models import OPEN, RESOLVED, Incident
from engine.store.ledger import append_events
from engine.store.models import Case, ProcessDefinition
from engine.store.timer_models import CaseTimer

KINDS = ("timer", "no_unit", "notification")
READERS = frozenset({"admin", "designer"})
SYSTEM = "system"


@dataclass(frozen=True)
class RetryPolicy:
    """How often a failed timer is tried again before an incident holds it."""

    delays: tuple[int, ...] = (30, 120, 600, 3600)
    max_tries: int = 5

    @classmethod
    def from_env(cls) -> "RetryPolicy":
        delays = os.environ.get("TIMER_RETRY_DELAYS", "")
        return cls(delays=tuple(int(d) for d in delays.split(",") if d.strip()) or cls.delays,
                   max_tries=int(os.environ.get("TIMER_MAX_TRIES", cls.max_tries)))

    def delay(self, tries: int) -> timedelta:
        """The wait after the `tries`-th failed attempt."""
        return timedelta(seconds=self.delays[min(max(tries, 1), len(self.delays)) - 1])


def describe(exc: BaseException) -> tuple[str, str]:
    """(message, exception type) of a failure, for the incident."""
    message = exc.message if isinstance(exc, CaseError) else str(exc) or exc.__class__.__name__
    kind = type(exc)
    name = kind.__qualname__ if kind.__module__ in ("builtins", "engine.errors") else \
        f"{kind.__module__}.{kind.__qualname__}"
    return message, name


# -- the record ----------------------------------------------------------------------------


def note_on_case(session, case_id: int, type_: str, payload: dict, actor: str, now: datetime,
                 element: str | None = None) -> None:
    """Append a note (no workflow change) to a case's log; the case's version stays, its seq moves on."""
    table = Case.__table__
    seq = session.execute(update(table).where(table.c.id == case_id).values(last_seq=table.c.last_seq + 1)
                          .returning(table.c.last_seq)).scalar_one()
    case = session.get(Case, case_id)
    version = session.scalar(select(ProcessDefinition.version).where(ProcessDefinition.id == case.definition_id))
    append_events(session, case, [dict(seq=seq, type=type_, at=now, actor=actor, task_id=None, element=element,
                                       lane=None, payload=payload, definition_version=version)])
    session.expire(case, ["last_seq"])


def open_or_bump_incident(session, *, kind: str, source: str, case_id: int | None, element: str | None,
                          error: str, now: datetime, tries: int | None = None, error_type: str | None = None,
                          details: dict | None = None) -> Incident:
    """The open incident of (kind, source): opened now, or bumped (tries, last seen, latest error).

    Runs inside the caller's transaction. A new incident on a case is noted in
    the case's log (`incident_opened`).
    """
    incident = _open_incident(session, kind, source)
    if incident is None:
        incident = Incident(kind=kind, source=source, case_id=case_id, element=element, error=error,
                            error_type=error_type, details=details, tries=tries or 1, first_seen=now,
                            last_seen=now, status=OPEN)
        try:
            with session.begin_nested():  # a concurrent opener wins the unique index: bump theirs
                session.add(incident)
        except IntegrityError:
            incident = _open_incident(session, kind, source)
        else:
            if case_id is not None:
                note_on_case(session, case_id, "incident_opened", {
                    "incident": incident.id, "kind": kind, "error": error, "tries": incident.tries}, SYSTEM, now,
                    element)
            return incident
    incident.tries = tries if tries is not None else incident.tries + 1
    incident.last_seen = now
    incident.error = error
    incident.error_type = error_type or incident.error_type
    incident.element = element or incident.element
    if details:
        incident.details = {**(incident.details or {}), **details}
    session.flush()
    return incident


def _open_incident(session, kind: str, source: str) -> Incident | None:
    return session.scalar(select(Incident).where(Incident.kind == kind, Incident.source == source,
                                                 Incident.status == OPEN).with_for_update())


def resolve_incident(session, incident_id: int, actor: str, now: datetime, resolution: str) -> bool:
    """Resolve an open incident (noted on its case) and release the timers it held; False if not open."""
    incident = session.scalar(select(Incident).where(Incident.id == incident_id).with_for_update())
    if incident is None or incident.status != OPEN:
        return False
    incident.status, incident.resolved_at, incident.resolved_by = RESOLVED, now, actor
    incident.resolution = resolution
    session.execute(update(CaseTimer).where(CaseTimer.incident_id == incident_id)
                    .values(incident_id=None, tries=0, retry_at=None))
    if incident.case_id is not None:
        note_on_case(session, incident.case_id, "incident_resolved", {
            "incident": incident.id, "kind": incident.kind, "resolution": resolution}, actor, now, incident.element)
    session.flush()
    return True


def _open_timer_incidents(case_id):
    return (Incident.case_id == case_id, Incident.status == OPEN, Incident.source.like("timer:%"))


def has_open_timer_incident(case_id):
    """A clause: the case has an open timer incident (read with the case by a firing: `resolve_replaced`
    has nothing to do without one)."""
    return select(Incident.id).where(*_open_timer_incidents(case_id)).exists()


def resolve_replaced(session, case_id: int, actor: str, now: datetime) -> int:
    """A timer of the case fired: resolve its open timer incidents whose held timer is gone (a migration
    replaced it, or the step it guarded was done); how many."""
    stale = [i for i in session.scalars(select(Incident).where(*_open_timer_incidents(case_id)))
             if session.get(CaseTimer, int(i.source.split(":", 1)[1])) is None]
    for incident in stale:
        resolve_incident(session, incident.id, actor, now, "the case's timers fired again; the held timer no "
                                                           "longer waits (replaced by a migration, or its step done)")
    return len(stale)


def bump_after_retry(rt, incident_id: int, exc: BaseException) -> None:
    """A retry failed again: one more try, seen now, with the latest error (its own transaction)."""
    message, error_type = describe(exc)
    with rt.db.write() as session:
        incident = session.get(Incident, incident_id)
        if incident is not None and incident.status == OPEN:
            open_or_bump_incident(session, kind=incident.kind, source=incident.source, case_id=incident.case_id,
                                  element=getattr(exc, "element", None) or incident.element, error=message,
                                  now=clock.now(), error_type=error_type)


# -- failures of asynchronous work ----------------------------------------------------------


def record_timer_failure(rt, timer_id: int, exc: BaseException, policy: RetryPolicy | None = None) -> str:
    """After a failed firing (rolled back): note the attempt on the case's due timers; "retrying" or "incident".

    Every due timer of the case fired (and failed) together, so they all wait
    for the next attempt; after the last try the incident holds them all.
    """
    policy = policy or RetryPolicy.from_env()
    message, error_type = describe(exc)
    with rt.db.write() as session:
        timer = session.get(CaseTimer, timer_id)
        if timer is None:
            return "gone"
        session.scalar(select(Case.id).where(Case.id == timer.case_id).with_for_update())  # beside firings
        now = clock.now()
        rows = session.scalars(select(CaseTimer).where(CaseTimer.case_id == timer.case_id, CaseTimer.due_at <= now,
                                                       CaseTimer.incident_id.is_(None))).all()
        tries = (timer.tries or 0) + 1
        if tries < policy.max_tries:
            for row in rows:
                row.tries, row.retry_at = tries, now + policy.delay(tries)
            return "retrying"
        element = getattr(exc, "element", None) or timer.element
        details = {"timer": timer.element, "timer_kind": timer.kind,
                   "due_at": timer.due_at.isoformat(), **_gap_details(exc)}
        incident = open_or_bump_incident(
            session, kind="no_unit" if isinstance(exc, OrganisationGap) else "timer", source=f"timer:{timer_id}",
            case_id=timer.case_id, element=element, error=message, now=now, tries=tries, error_type=error_type,
            details=details)
        for row in rows:
            row.tries, row.retry_at, row.incident_id = tries, None, incident.id
        return "incident"


def _gap_details(exc: BaseException) -> dict:
    if not isinstance(exc, OrganisationGap):
        return {"code": exc.code} if isinstance(exc, CaseError) else {}
    return {"code": exc.code, "lane": exc.details.get("lane"), "gap": exc.details.get("gap")}


def record_gap(rt, exc: OrganisationGap, actor: str | None) -> Incident | None:
    """A request refused for a task with no unit: the incident, in a transaction of its own."""
    now = clock.now()
    message, error_type = describe(exc)
    with rt.db.write() as session:
        case_id = getattr(exc, "case_id", None)  # None for a new case, rolled back with its first task
        source = f"case:{case_id}:{exc.element}" if case_id is not None else f"intake:{exc.element}"
        return open_or_bump_incident(session, kind="no_unit", source=source, case_id=case_id, element=exc.element,
                                     error=message, now=now, error_type=error_type,
                                     details={**_gap_details(exc), "actor": actor})


def records_gaps(fn):
    """Decorate a synchronous service: an `OrganisationGap` it raises is recorded as an incident, then raised."""

    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(rt, *args, **kwargs):
        try:
            return fn(rt, *args, **kwargs)
        except OrganisationGap as exc:
            given = signature.bind_partial(rt, *args, **kwargs).arguments
            user = given.get("user")
            record_gap(rt, exc, user.username if user is not None else given.get("actor"))
            raise

    return wrapper


# -- reading ------------------------------------------------------------------------------


def require_reader(user) -> None:
    if user is not None and not user.roles & READERS:
        raise Forbidden("only an administrator or a process designer may see incidents")


def incident_view(incident: Incident, case_no: str | None) -> dict:
    def iso(value):
        return value.isoformat() if value else None

    return {
        "id": incident.id, "kind": incident.kind, "source": incident.source, "case_no": case_no,
        "element": incident.element, "error": incident.error, "error_type": incident.error_type,
        "details": incident.details or {}, "tries": incident.tries, "first_seen": iso(incident.first_seen),
        "last_seen": iso(incident.last_seen), "status": incident.status, "resolved_at": iso(incident.resolved_at),
        "resolved_by": incident.resolved_by, "resolution": incident.resolution,
    }


def list_incidents(rt, user=None, filters: dict | None = None) -> dict:
    """Incidents, newest first: open ones unless `status` says otherwise; by `case` (number) and `kind`."""
    require_reader(user)
    filters = filters or {}
    stmt = select(Incident, Case.case_no).outerjoin(Case, Case.id == Incident.case_id)
    status = filters.get("status") or OPEN
    if status != "all":
        stmt = stmt.where(Incident.status == status)
    if filters.get("case"):
        stmt = stmt.where(Case.case_no == filters["case"])
    if filters.get("kind"):
        stmt = stmt.where(Incident.kind == filters["kind"])
    stmt = stmt.order_by(Incident.last_seen.desc(), Incident.id.desc())
    page, per_page = page_args(filters)
    with rt.db.read() as session:
        total, rows = paginate(session, stmt, page, per_page)
        items = [incident_view(r[0], r.case_no) for r in rows]
    return page_view(items, total, page, per_page)


def load_incident(session, incident_id: int) -> tuple[Incident, str | None]:
    row = session.execute(select(Incident, Case.case_no).outerjoin(Case, Case.id == Incident.case_id)
                          .where(Incident.id == incident_id)).first()
    if row is None:
        raise NotFound(f"incident {incident_id} does not exist")
    return row[0], row.case_no


def get_incident(rt, user, incident_id: int) -> dict:
    require_reader(user)
    with rt.db.read() as session:
        return incident_view(*load_incident(session, incident_id))
