"""The case log as a hash chain, and the digest of a workflow's state.

Every event appended to `case_event` goes through `append_events`, the one
place that chains: its `hash` is sha256 over the previous event's hash and a
canonical serialisation of the event (sorted keys, compact separators, UTF-8,
instants as ISO 8601 UTC). The first event of a case chains to sha256 of its
case number, so a case's log cannot be passed off as another's. Each event
also carries `state_digest`, the digest of the workflow state after the
operation that wrote it (events that do not touch the workflow, claims,
repeat the previous digest), and `op_seq`, the seq of the first event of that
operation, so a replay knows which events were one unit of work.

The state digest is taken over an id-free normal form of the workflow (task
spec names, states, data and internal data such as a timer's due instant, in
tree order): SpiffWorkflow's task ids are random uuid4s, so a replay gets
other ids but, given the same events, the same digest. The normal form reads
the same before and after serialization, so the stored state can be checked
against the last event's digest.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

from sqlalchemy import insert, select

from engine.store import case_facts
from engine.store.db import json_dumps
from engine.store.models import CaseEvent

HASHED = ("seq", "op_seq", "type", "at", "actor", "task_id", "element", "lane", "payload", "definition_version",
          "state_digest")


def _canonical_json(value) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def normal_payload(payload):
    """The payload as the database gives it back (JSON round trip), so hashing reads the same later."""
    return None if payload is None else json.loads(json_dumps(payload))


def _instant(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat()


def genesis(case_no: str) -> bytes:
    return hashlib.sha256(f"case:{case_no}".encode("utf-8")).digest()


def event_hash(prev: bytes, event) -> bytes:
    """The chained hash of one event (a row, or a dict with the same keys)."""
    get = event.get if isinstance(event, dict) else lambda k: getattr(event, k)
    record = {k: get(k) for k in HASHED}
    record["at"] = _instant(record["at"])
    record["state_digest"] = record["state_digest"].hex() if record["state_digest"] is not None else None
    return hashlib.sha256(prev + _canonical_json(record)).digest()


def _id_free(internal: dict) -> dict:
    # A multi-instance task lists the (random) ids of its merged instances: only their number is state.
    if isinstance(internal.get("merged"), list):
        return dict(internal, merged=len(internal["merged"]))
    return internal


def state_digest(workflow) -> bytes:
    """sha256 over the id-free normal form of the workflow and its running subprocesses."""
    parts: list = [workflow.data]
    stack = [(workflow, workflow.task_tree)]
    while stack:
        owner, task = stack.pop()
        parts.append((task.task_spec.name, int(task.state), task.data, _id_free(task.internal_data)))
        sub = workflow.subprocesses.get(task.id)
        if sub is not None:
            parts.append(("subprocess", sub.data))
            stack.append((sub, sub.task_tree))
        stack.extend((owner, child) for child in reversed(task.children))
    return hashlib.sha256(_canonical_json(parts)).digest()


def append_events(session, case, rows: list[dict], digest: bytes | None = None, facts: bool = True,
                  writer=None) -> bytes | None:
    """Insert `rows` (each with its seq already taken, consecutive) as one operation, chained.

    `digest` is the workflow's state digest after the operation; None means
    the operation left the workflow alone (the previous event's digest holds).
    Returns the hash of the last event: the chain's new head. An engine
    operation keeps it on the case row (`chain_hash`, `chain_seq`), so the next
    one chains without reading the log; the head is used only while its seq is
    the one just before `rows`, so an append that did not move it (a claim) makes
    the next append read the log again, never chain to a stale head. The events are
    added to the case's statistics timeline too (engine.store.case_facts) unless
    `facts` is false: the caller records them itself.
    """
    if not rows:
        return None
    first = rows[0]["seq"]
    prev = None
    if first > 1 and digest is not None and case.chain_hash is not None and case.chain_seq == first - 1:
        prev_hash = case.chain_hash
    else:
        if first > 1:
            prev = session.execute(select(CaseEvent.hash, CaseEvent.state_digest)
                                   .where(CaseEvent.case_id == case.id, CaseEvent.seq == first - 1)).first()
        prev_hash = prev.hash if prev is not None and prev.hash is not None else genesis(case.case_no)
    if digest is None and prev is not None:
        digest = prev.state_digest
    out = []
    for row in rows:
        row = dict(row, case_id=case.id, op_seq=first, state_digest=digest, payload=normal_payload(row.get("payload")))
        row["hash"] = prev_hash = event_hash(prev_hash, row)
        out.append(row)
    (writer or session).execute(insert(CaseEvent.__table__), out)
    if facts:  # the case's statistics timeline (an engine operation records it with its task rows instead)
        case_facts.record(session, case.id, events=out)
    return prev_hash
