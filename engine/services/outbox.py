"""The outbox dispatcher: an explicit worker loop delivering notifications at least once, never lost.

    bootstrap → loop { claim a batch → send each with its idempotency key → record → heartbeat } → teardown

Claim: one write transaction selects due rows (`pending`, `failed` whose retry
time came, or `sending` whose lease expired: its worker died) with `FOR UPDATE
SKIP LOCKED` on PostgreSQL, so several dispatchers share the table without
waiting on one another (on SQLite the writer lock serialises claims), and
marks them `sending` under this worker's lease, counting the attempt. Citizen
SMS inside the quiet hours are not claimed but put off to their end. Send:
outside any transaction, through the channel registry (channels/, injected),
always with the row's idempotency key, `send_threads` at a time. Record: the outcome in its own short
transaction, only if this worker still holds the lease; the same transaction
extends the lease of the rest of the batch (the heartbeat). A crash between
sending and recording leaves the row `sending`; once the lease expires another
attempt sends it again with the same key, which the provider recognises.
After `max_attempts` (or a permanent error) `dead_letter` ends the message.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import and_, or_, select, update

from engine import clock
from engine.rules.notifications import TemplateError, load_templates, parse_quiet_hours, quiet_until
from engine.services.incidents import open_or_bump_incident
from engine.store.client_models import ApiClient
from engine.store.models import Case, Outbox
from engine.store.org_models import AppUser, Unit, UserRole
from engine.store.outbox_state import CLAIMABLE, MessageState, check_transition

log = logging.getLogger(__name__)
S = MessageState


@dataclass(frozen=True)
class Delivery:
    """One message as a channel sends it (the port every channel of `channels/` implements)."""

    key: str                 # the idempotency key: the same on every attempt of this message
    channel: str             # sms | email | webhook
    kind: str                # the message kind (its template)
    address: str             # phone number, e-mail address or webhook URL
    title: str
    text: str
    params: dict = field(default_factory=dict)
    sms_template: str = ""
    secret: str | None = None        # the webhook's HMAC secret
    case_no: str | None = None
    recipient_kind: str = ""
    created_at: str = ""


class DeliveryFailed(Exception):
    """The provider did not take the message; `permanent` failures are not tried again."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Settings:
    max_attempts: int = 5
    backoff_seconds: float = 30.0
    backoff_cap_seconds: float = 3600.0
    lease_seconds: float = 60.0
    batch: int = 50
    poll_seconds: float = 1.0
    send_threads: int = 4
    quiet_hours: tuple | None = None

    @classmethod
    def from_config(cls, config: dict) -> "Settings":
        def num(key, default, kind=float):
            value = config.get(key)
            return kind(value) if value not in (None, "") else default

        return cls(max_attempts=num("OUTBOX_MAX_ATTEMPTS", 5, int), backoff_seconds=num("OUTBOX_BACKOFF_SECONDS", 30.0),
                   backoff_cap_seconds=num("OUTBOX_BACKOFF_CAP_SECONDS", 3600.0),
                   lease_seconds=num("OUTBOX_LEASE_SECONDS", 60.0), batch=num("OUTBOX_BATCH", 50, int),
                   poll_seconds=num("OUTBOX_POLL_SECONDS", 1.0), send_threads=num("OUTBOX_SEND_THREADS", 4, int),
                   quiet_hours=parse_quiet_hours(config.get("OUTBOX_QUIET_HOURS", "22:00-08:00")))

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed attempt: doubling from `backoff_seconds`, capped."""
        return timedelta(seconds=min(self.backoff_cap_seconds, self.backoff_seconds * 2 ** max(0, attempts - 1)))


# -- recipients -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contact:
    channel: str
    address: str
    secret: str | None = None


def _contact_of_row(row, channel: str | None) -> Contact | None:
    if row is None:
        return None
    addresses = {"sms": row.phone, "email": row.email, "webhook": row.webhook_url}
    order = [channel] if channel else [row.notify_channel, "sms", "email", "webhook"]
    for name in order:
        if name and addresses.get(name):
            return Contact(name, addresses[name], row.webhook_secret if name == "webhook" else None)
    return None


def _unit(session, code, channel):
    return _contact_of_row(session.get(Unit, code), channel)


def _user(session, username, channel):
    user = session.scalar(select(AppUser).where(AppUser.username == username))
    return _contact_of_row(user, channel) or (_unit(session, user.unit_code, channel) if user else None)


def _leader(session, unit_code, channel):
    leaders = session.scalars(select(AppUser).join(UserRole, UserRole.user_id == AppUser.id).where(
        AppUser.unit_code == unit_code, UserRole.role == "leader", AppUser.active.is_(True)).order_by(AppUser.username))
    for user in leaders:
        contact = _contact_of_row(user, channel)
        if contact:
            return contact
    return _unit(session, unit_code, channel)


def _citizen(session, phone, channel):
    return Contact("sms", phone) if phone and channel in (None, "sms") else None


def _api_client(session, name, channel):
    """A source system's status callback: its callback URL and secret, by webhook only."""
    client = session.scalar(select(ApiClient).where(ApiClient.name == name))
    if client is None or client.revoked or not client.callback_url or channel not in (None, "webhook"):
        return None
    return Contact("webhook", client.callback_url, client.callback_secret)


# recipient_kind -> resolver(session, recipient, channel or None) -> Contact | None. A new kind of
# recipient (a source system's callback URL and secret) is one more line here.
RESOLVERS = {"unit": _unit, "user": _user, "leader": _leader, "citizen": _citizen, "api_client": _api_client}


def contact_of(session, recipient_kind: str, recipient: str, channel: str | None) -> Contact | None:
    resolver = RESOLVERS.get(recipient_kind)
    return resolver(session, recipient, None if channel in (None, "auto") else channel) if resolver else None


# -- the dead letter -------------------------------------------------------------------------


def dead_letter(session, row: Outbox, error: str) -> None:
    """The one way a message dies: no attempt is left (or none can succeed).

    Recorded on the row, and an incident (kind `notification`) opened — or bumped — in the same
    transaction, for administrators to see and retry (`flask incidents retry ID` re-queues it).
    """
    row.status = check_transition(row.status, S.DEAD).value
    row.last_error = error[:2000]
    row.next_attempt_at = None
    row.lease_owner = row.lease_expires_at = None
    open_or_bump_incident(session, kind="notification", source=f"outbox:{row.id}", case_id=row.case_id,
                          element=row.kind, error=error, now=clock.now(), tries=row.attempts)
    log.error("outbox message %s (%s to a %s) is dead after %d attempt(s): %s",
              row.id, row.kind, row.recipient_kind, row.attempts, error)


# -- the worker --------------------------------------------------------------------------------


def worker_name() -> str:
    return f"outbox:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Dispatcher:
    """One outbox worker. `run(stop)` is the loop; `run_once` one claim-send-record round."""

    def __init__(self, rt, channels: dict, settings: Settings | None = None, worker: str | None = None):
        self.rt = rt
        self.channels = channels
        self.settings = settings or Settings()
        self.worker = worker or worker_name()
        self.outcomes: dict[str, int] = {}
        self._renewed_at = None
        load_templates(rt.processes_dir)  # bootstrap: a broken template file stops the worker here, by name

    # -- the loop ------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        log.info("outbox dispatcher %s started (channels: %s)", self.worker, ", ".join(sorted(self.channels)))
        try:
            while not stop.is_set():
                try:
                    claimed = self.run_once()
                except Exception:  # the database went away mid-round: leases expire, rows are taken again
                    log.exception("outbox dispatcher %s: a round failed; trying again", self.worker)
                    claimed = 0
                if claimed == 0:
                    stop.wait(self.settings.poll_seconds)
        finally:
            self.release()
            log.info("outbox dispatcher %s stopped: %s", self.worker, self.outcomes)

    def run_once(self) -> int:
        """Claim one batch, deliver it and record every outcome; returns how many were claimed.

        The batch is sent `send_threads` at a time (a provider's latency, not this worker, is
        what limits the rate). Outcomes are recorded as they arrive, in groups: each record
        transaction takes every outcome that arrived while the one before it ran, so a fast
        provider costs one transaction for several messages, not one each, and a slow one
        still has each outcome recorded as soon as it is known.
        """
        batch = self.claim()
        if len(batch) <= 1:
            for row_id, delivery, problem in batch:
                self.record(row_id, *self._send(row_id, delivery, problem))
            return len(batch)
        with ThreadPoolExecutor(min(max(1, self.settings.send_threads), len(batch)), "outbox-send") as pool:
            pending = {pool.submit(self._send, *item): item[0] for item in batch}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                self.record_many([(pending.pop(future), *future.result()) for future in done])
        return len(batch)

    def run_until_idle(self) -> dict:
        """Deliver everything due by the clock's now (tests, `flask outbox run --once`)."""
        while self.run_once():
            pass
        return dict(self.outcomes)

    # -- claim ------------------------------------------------------------------------------

    @staticmethod
    def _due(now):
        return or_(and_(Outbox.status.in_([s.value for s in CLAIMABLE]),
                        or_(Outbox.next_attempt_at.is_(None), Outbox.next_attempt_at <= now)),
                   and_(Outbox.status == S.SENDING.value, Outbox.lease_expires_at < now))

    def claim(self) -> list[tuple[int, Delivery | None, str | None]]:
        """Lease the next due messages; returns (row id, delivery or None, why it cannot be sent).

        Each recipient's contact and each case's number are read once per batch (a unit notified
        of ten cases is one lookup), the case numbers in one query.
        """
        now = clock.now()
        templates = load_templates(self.rt.processes_dir)
        out = []
        with self.rt.db.write() as session:
            rows = session.scalars(select(Outbox).where(self._due(now)).order_by(Outbox.id)
                                   .limit(self.settings.batch).with_for_update(skip_locked=True)).all()
            case_ids = {row.case_id for row in rows if row.case_id}
            case_nos = dict(session.execute(select(Case.id, Case.case_no).where(Case.id.in_(case_ids))).all()
                            ) if case_ids else {}
            contacts: dict[tuple, Contact | None] = {}
            for row in rows:
                if row.status == S.SENDING.value and row.attempts >= self.settings.max_attempts:
                    dead_letter(session, row, f"no outcome recorded in {row.attempts} attempts: the dispatcher "
                                              f"died each time (the provider may have received it)")
                    continue
                who = (row.recipient_kind, row.recipient, row.channel)
                if who not in contacts:
                    contacts[who] = contact_of(session, *who)
                contact = contacts[who]
                later = self._quiet(row, contact, now)
                if later is not None:
                    row.next_attempt_at = later  # not an attempt, not a change of state
                    continue
                row.status = check_transition(row.status, S.SENDING).value
                row.attempts += 1
                row.lease_owner, row.lease_expires_at = self.worker, now + self._lease()
                self._renewed_at = now
                out.append(self._delivery(templates, row, contact, case_nos.get(row.case_id)))
        return out

    def _quiet(self, row: Outbox, contact: Contact | None, now):
        if row.recipient_kind != "citizen" or contact is None or contact.channel != "sms":
            return None
        return quiet_until(now, self.rt.tz, self.settings.quiet_hours)

    def _lease(self) -> timedelta:
        return timedelta(seconds=self.settings.lease_seconds)

    def _delivery(self, templates, row: Outbox, contact: Contact | None, case_no: str | None):
        if contact is None:
            return row.id, None, (f"{row.recipient_kind} {row.recipient!r} has no contact for the "
                                  f"{row.channel} channel (set one with `flask outbox contact`)")
        if contact.channel not in self.channels:
            return row.id, None, f"the {contact.channel} channel is not configured"
        row.channel, row.address = contact.channel, contact.address
        try:  # rows written before templates existed carry their text only
            rendered = templates.render(row.kind, row.params if row.params is not None else {"text": row.message})
        except TemplateError as exc:
            return row.id, None, f"cannot render the message: {exc}"
        return row.id, Delivery(key=row.idempotency_key, channel=contact.channel, kind=row.kind, address=contact.address,
                                title=rendered.title, text=rendered.text, params=rendered.params,
                                sms_template=rendered.sms_template, secret=contact.secret, case_no=case_no,
                                recipient_kind=row.recipient_kind, created_at=row.created_at.isoformat()), None

    # -- send and record -------------------------------------------------------------------

    def _send(self, row_id: int, delivery: Delivery | None, problem: str | None) -> tuple:
        """(provider reference, error, permanent) of one attempt; never raises."""
        ref, error, permanent = None, problem, problem is not None
        if delivery is not None:
            try:
                ref = self.channels[delivery.channel].send(delivery)
            except DeliveryFailed as exc:
                error, permanent = str(exc), exc.permanent
            except Exception as exc:  # a channel bug: recorded on the message, tried again
                log.exception("outbox message %s: the channel raised", row_id)
                error, permanent = f"{type(exc).__name__}: {exc}", False
        return ref, error, permanent

    def record(self, row_id: int, ref: str | None, error: str | None, permanent: bool = False) -> str:
        """Write the outcome of one attempt (if this worker still holds the lease) and heartbeat."""
        return self.record_many([(row_id, ref, error, permanent)])[0]

    def record_many(self, outcomes: list[tuple]) -> list[str]:
        """Write the outcomes (row id, provider reference, error[, permanent]) of several attempts in one
        transaction, each only if this worker still holds its lease, and heartbeat; returns each one's outcome.
        The rows are locked in id order, as every claim takes them, so two workers never deadlock.
        """
        now = clock.now()
        with self.rt.db.write() as session:
            rows = {row.id: row for row in session.scalars(
                select(Outbox).where(Outbox.id.in_([o[0] for o in outcomes])).order_by(Outbox.id).with_for_update())}
            out = [self._outcome(session, rows.get(row_id), now, ref, error, *flag)
                   for row_id, ref, error, *flag in outcomes]
            self._heartbeat(session, now)
        for outcome in out:
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        return out

    def _outcome(self, session, row: Outbox | None, now, ref: str | None, error: str | None,
                 permanent: bool = False) -> str:
        if row is None or row.status != S.SENDING.value or row.lease_owner != self.worker:
            return "lost_lease"  # another worker took it over; it records its own attempt
        if error is None:
            row.status = check_transition(row.status, S.SENT).value
            row.sent_at, row.provider_ref, row.last_error = now, (ref or "")[:100], None
            row.lease_owner = row.lease_expires_at = None
            return "sent"
        if permanent or row.attempts >= self.settings.max_attempts:
            dead_letter(session, row, error)
            return "dead"
        row.status = check_transition(row.status, S.FAILED).value
        row.last_error = error[:2000]
        row.next_attempt_at = now + self.settings.backoff(row.attempts)
        row.lease_owner = row.lease_expires_at = None
        return "failed"

    def _heartbeat(self, session, now) -> None:
        """Extend this worker's leases, once a third of the lease has passed since the last time."""
        if self._renewed_at is not None and now - self._renewed_at < self._lease() / 3:
            return
        self._renewed_at = now
        session.execute(update(Outbox).where(Outbox.lease_owner == self.worker, Outbox.status == S.SENDING.value)
                        .values(lease_expires_at=now + self._lease()))

    def release(self) -> None:
        """Teardown: give back the leases of messages claimed but not attempted (sending → pending)."""
        try:
            with self.rt.db.write() as session:
                for row in session.scalars(select(Outbox).where(Outbox.lease_owner == self.worker,
                                                                Outbox.status == S.SENDING.value)):
                    row.status = check_transition(row.status, S.PENDING).value
                    row.attempts = max(0, row.attempts - 1)
                    row.lease_owner = row.lease_expires_at = None
        except Exception:  # shutting down: the leases expire by themselves
            log.warning("could not release the outbox leases of %s", self.worker, exc_info=True)
