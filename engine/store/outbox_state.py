"""The lifecycle of one outbox message: its states as a `str` Enum and every allowed transition.

    pending ──claim──▶ sending ──▶ sent
       ▲                  │ ├────▶ failed ──(retry at next_attempt_at)──▶ sending
       │                  │ └────▶ dead     (after the last allowed attempt, or a permanent error)
       └──── deferred ────┘        (quiet hours; not an attempt)
    failed | dead ──retry (an administrator)──▶ pending

A `sending` row whose lease expired (its worker died between sending and
recording) is claimed again: sending → sending, with the same idempotency key.
This module is the one place these rules live; the dispatcher asks it before
every change of state.
"""
from __future__ import annotations

from enum import Enum


class MessageState(str, Enum):
    PENDING = "pending"   # waiting for its first attempt (or for the end of quiet hours)
    SENDING = "sending"   # leased by a dispatcher, which is talking to the provider now
    SENT = "sent"         # the provider accepted it
    FAILED = "failed"     # the last attempt failed; tried again at next_attempt_at
    DEAD = "dead"         # no more attempts (the dead letter); an administrator may retry it


TRANSITIONS: dict[MessageState, frozenset[MessageState]] = {
    MessageState.PENDING: frozenset({MessageState.SENDING}),
    MessageState.SENDING: frozenset({MessageState.SENDING, MessageState.SENT, MessageState.FAILED,
                                     MessageState.DEAD, MessageState.PENDING}),
    MessageState.FAILED: frozenset({MessageState.SENDING, MessageState.PENDING, MessageState.DEAD}),
    MessageState.DEAD: frozenset({MessageState.PENDING}),
    MessageState.SENT: frozenset(),
}

# States a dispatcher may claim (a `sending` row only once its lease expired).
CLAIMABLE = (MessageState.PENDING, MessageState.FAILED)
# States an administrator may send again.
RETRYABLE = (MessageState.FAILED, MessageState.DEAD)


class TransitionRefused(ValueError):
    def __init__(self, old: str, new: str):
        super().__init__(f"an outbox message cannot go from {old} to {new}")
        self.old, self.new = old, new


def check_transition(old: str, new: str) -> MessageState:
    """Return `new` as a state if `old -> new` is allowed, else raise `TransitionRefused`."""
    if MessageState(new) not in TRANSITIONS[MessageState(old)]:
        raise TransitionRefused(old, new)
    return MessageState(new)
