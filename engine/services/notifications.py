"""The read and admin side of the outbox: a case's notifications, the administrators' list and retry,
and the contact settings of units and users that decide each recipient's channel.

A case's notifications are scoped like the case (outside scope: 404); a citizen's
phone and every contact address are masked for callers who may not see the
case's personal data. The outbox list and retry are the administrator's.
"""
from __future__ import annotations

import re

from sqlalchemy import select

from engine.errors import Conflict, InvalidInput, NotFound
from engine.rules import access
from engine.services.cases import find_case, masked_for
from engine.services.search import page_args, page_view, paginate
from engine.services.views import mask
from engine.store.models import Case, Outbox
from engine.store.org_models import AppUser, Unit
from engine.store.outbox_state import RETRYABLE, MessageState, TransitionRefused, check_transition

CHANNELS = ("sms", "email", "webhook")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE = re.compile(r"^\+?[0-9]{5,20}$")


class MessageNotFound(NotFound):
    code = "outbox_message_not_found"


def _iso(value):
    return value.isoformat() if value is not None else None


def message_view(row: Outbox, case_no: str | None, masked: bool) -> dict:
    recipient = mask(row.recipient) if masked and row.recipient_kind == "citizen" else row.recipient
    return {
        "id": row.id, "case_no": case_no, "kind": row.kind, "channel": row.channel,
        "recipient_kind": row.recipient_kind, "recipient": recipient,
        "address": mask(row.address) if masked else row.address, "text": row.message,
        "status": row.status, "attempts": row.attempts, "idempotency_key": row.idempotency_key,
        "created_at": _iso(row.created_at), "sent_at": _iso(row.sent_at),
        "next_attempt_at": _iso(row.next_attempt_at), "last_error": row.last_error,
    }


def case_notifications(rt, case_no: str, user=None) -> list[dict]:
    """The notifications of one case and how far their delivery got, oldest first."""
    with rt.db.read() as session:
        case = find_case(rt, session, case_no, user)
        masked = masked_for(user, case)
        rows = session.scalars(select(Outbox).where(Outbox.case_id == case.id).order_by(Outbox.id))
        return [message_view(r, case.case_no, masked) for r in rows]


def list_outbox(rt, user, filters: dict) -> dict:
    """Every notification, newest first, filtered by status, channel or case (administrators)."""
    access.require_admin(user)
    stmt = select(Outbox, Case.case_no).outerjoin(Case, Case.id == Outbox.case_id)
    if filters.get("status"):
        stmt = stmt.where(Outbox.status == filters["status"])
    if filters.get("channel"):
        stmt = stmt.where(Outbox.channel == filters["channel"])
    if filters.get("case"):
        stmt = stmt.where(Case.case_no == filters["case"])
    page, per_page = page_args(filters)
    with rt.db.read() as session:
        total, rows = paginate(session, stmt.order_by(Outbox.id.desc()), page, per_page)
        # An administrator is not the accepting community: citizens' numbers stay masked.
        return page_view([message_view(r, no, masked=True) for r, no in rows], total, page, per_page)


def retry_message(rt, message_id: int, user) -> dict:
    """Send a failed or dead message again now, with its attempts counted afresh and the same key."""
    access.require_admin(user)
    with rt.db.write() as session:
        row = requeue_message(session, message_id)
        case_no = session.scalar(select(Case.case_no).where(Case.id == row.case_id)) if row.case_id else None
        return message_view(row, case_no, masked=True)


def requeue_message(session, message_id: int) -> Outbox:
    """Put a failed or dead message back in the queue (in the caller's transaction); 409 for any other."""
    row = session.get(Outbox, message_id, with_for_update=True)
    if row is None:
        raise MessageNotFound(f"outbox message {message_id} does not exist")
    if row.status not in [s.value for s in RETRYABLE]:
        raise Conflict(f"outbox message {message_id} is {row.status}; only failed or dead messages are retried")
    try:
        row.status = check_transition(row.status, MessageState.PENDING).value
    except TransitionRefused as exc:
        raise Conflict(str(exc)) from None
    row.attempts, row.next_attempt_at = 0, None
    return row


def set_contact(rt, kind: str, code: str, **fields) -> dict:
    """Set a unit's or a user's notification contact; given fields only (an empty string clears one)."""
    errors = _contact_errors(fields)
    if errors:
        raise InvalidInput("the contact settings are not valid", errors=errors)
    with rt.db.write() as session:
        row = session.get(Unit, code) if kind == "unit" else \
            session.scalar(select(AppUser).where(AppUser.username == code))
        if row is None:
            raise NotFound(f"{kind} {code} does not exist")
        for name, value in fields.items():
            if value is not None:
                setattr(row, name, value or None)
        return {"kind": kind, "code": code, "phone": row.phone, "email": row.email, "webhook_url": row.webhook_url,
                "webhook_secret": "***" if row.webhook_secret else None, "notify_channel": row.notify_channel}


def _contact_errors(fields: dict) -> dict:
    checks = {"phone": (PHONE, "digits, 5 to 20, an optional leading +"), "email": (EMAIL, "an e-mail address"),
              "webhook_url": (re.compile(r"^https?://\S+$"), "an http(s) URL")}
    errors = {}
    for name, (pattern, what) in checks.items():
        if fields.get(name) and not pattern.match(fields[name]):
            errors[name] = [f"must be {what}"]
    if fields.get("notify_channel") and fields["notify_channel"] not in CHANNELS:
        errors["notify_channel"] = [f"must be one of {', '.join(CHANNELS)}"]
    return errors
