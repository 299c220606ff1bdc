"""Audit services: replay a case, verify the log, the path a case took, and migrate cases.

- `replay_case` rebuilds a case from its pinned definition version and its
  events alone (engine.core.replay) and answers with each step and the verdict,
  "consistent" or the first divergent event; `until=N` also gives the state
  as of event N (open tasks and who held them, waiting and fired deadlines).
- `verify_cases` checks, per case, the hash chain (engine.store.ledger: an altered,
  reordered or deleted event breaks it), the stored workflow state against
  the last event's state digest, and a strict replay.
- `case_path` lists the BPMN element ids the case has passed through.
- `migrate_cases` re-pins running cases to another version of their process
  after replaying each one's history on it (dry run: only that); cases whose
  history does not fit the new version are refused. A migration is itself an
  event, `case_migrated`, carrying the old and new versions and the new ids
  of the open tasks, so later replays can follow it.

Replays only read: nothing here writes, except an applied migration.
"""
from __future__ import annotations

import gc

from sqlalchemy import select, update

from engine import clock
from engine.core.replay import MIGRATED, Diverged, Replayer, operations
from engine.core.serializer import SERIALIZER_VERSION, dump_workflow, load_workflow
from engine.core.timers import pending_timers, sync_timers
from engine.errors import DefinitionNotFound, Forbidden, InvalidInput
from engine.rules.status import CaseStatus, TaskRowState
from engine.services.cases import _lock_case, find_case, masked_for
from engine.services.views import _masked_payload
from engine.store.ledger import append_events, event_hash, genesis, state_digest
from engine.store.models import Case, CaseEvent, CaseTask, ProcessDefinition
from engine.store.timer_models import CaseTimer, Supervision

AUDITOR = "auditor"
BATCH = 200


class Definitions:
    """Loaded definitions by (process id, version), for one audit run."""

    def __init__(self, rt, session):
        self.rt, self.session = rt, session
        self._ids: dict = {}

    def process_of(self, case: Case) -> str:
        return self.rt.definitions.get(self.session, case.definition_id).process_id

    def get(self, process_id: str, version: int):
        key = (process_id, version)
        if key not in self._ids:
            self._ids[key] = self.session.scalar(select(ProcessDefinition.id).where(
                ProcessDefinition.process_id == process_id, ProcessDefinition.version == version))
        if self._ids[key] is None:
            raise DefinitionNotFound(f"process {process_id!r} has no version {version}")
        return self.rt.definitions.get(self.session, self._ids[key])


def _events(session, case_ids: list[int]) -> dict[int, list]:
    """The events of the cases, in order, as plain read-only rows (no ORM objects: they are never changed)."""
    out: dict[int, list] = {i: [] for i in case_ids}
    table = CaseEvent.__table__
    rows = session.execute(select(table).where(table.c.case_id.in_(case_ids)).order_by(table.c.case_id, table.c.seq))
    for e in rows:
        out[e.case_id].append(e)
    return out


def rebuild(rt, defs: Definitions, process_id: str, events: list, *, until: int | None = None,
            strict: bool = True, target=None) -> tuple[Replayer | None, Diverged | None]:
    """Replay `events` (up to the operation holding event `until`); the replayer and the first divergence.

    With a `target` definition the whole history is replayed on it in trace mode (a migration's dry run).
    """
    if not events:
        return None, Diverged(1, "the case has no events")
    if events[0].type != "case_started":
        return None, Diverged(events[0].seq, f"the log starts with {events[0].type}, not case_started")
    strict = strict and target is None
    r = None
    try:
        definition = target or defs.get(process_id, events[0].definition_version)
        r = Replayer(rt.functions, definition.spec, definition.subprocess_specs, strict)
        history: list = []
        for op in operations(events):
            first = op[0]
            if until is not None and first.seq > until:
                break
            if first.type == MIGRATED:
                if target is None:
                    r = _follow_migration(rt, defs, process_id, history, first, strict)
                else:
                    r.remap(first.payload.get("task_ids"))
                history.append(op)
                continue
            digest = r.apply(op)
            history.append(op)
            if strict and digest is not None and digest != first.state_digest:
                raise Diverged(first.seq, "the workflow state after this operation differs from the recorded one "
                                          f"(recorded digest {_short(first.state_digest)}, replayed "
                                          f"{_short(digest)}); replayed open tasks: "
                                          f"{[t['element'] for t in r.open_tasks()] or 'none'}")
        return r, None
    except Diverged as exc:
        return r, exc
    except DefinitionNotFound as exc:
        return None, Diverged(events[0].seq, exc.message)


def _follow_migration(rt, defs, process_id, history, event, strict) -> Replayer:
    """Rebuild on the version the case was migrated to, as the migration did, and check its digest."""
    definition = defs.get(process_id, event.payload["to"])
    r = Replayer(rt.functions, definition.spec, definition.subprocess_specs, strict=False)
    for op in history:
        if op[0].type == MIGRATED:
            r.remap(op[0].payload.get("task_ids"))
        else:
            r.apply(op)
    r.remap(event.payload.get("task_ids"))
    r.strict = strict
    if strict and r.digest() != event.state_digest:
        raise Diverged(event.seq, f"the state after migrating to version {event.payload['to']} differs from the "
                                  "recorded one")
    return r


def _short(digest) -> str:
    return digest.hex()[:12] if digest else "none"


def _step(e: CaseEvent, masked: bool) -> dict:
    return {"seq": e.seq, "type": e.type, "at": e.at.isoformat(), "actor": e.actor, "task_id": e.task_id,
            "element": e.element, "lane": e.lane, "definition_version": e.definition_version,
            "payload": _masked_payload(e.payload) if masked else e.payload}


def _verdict(divergence: Diverged | None, events: list) -> dict:
    if divergence is None:
        return {"consistent": True, "verdict": "consistent", "divergence": None}
    e = next((e for e in events if e.seq == divergence.seq), None)
    return {"consistent": False, "verdict": f"diverges at event {divergence.seq}: {divergence.reason}",
            "divergence": {"seq": divergence.seq, "type": e.type if e else None, "element": e.element if e else None,
                           "reason": divergence.reason}}


def replay_case(rt, case_no: str, user=None, until: int | None = None) -> dict:
    """Each step of the case (who, what, when, lane, data) and the replay's verdict; `until` gives the state then."""
    with rt.db.read() as session:
        case = find_case(rt, session, case_no, user)
        if user is not None and AUDITOR not in user.roles:
            raise Forbidden("only an auditor may replay a case")
        if until is not None and until < 1:
            raise InvalidInput("until must be a positive event number", errors={"until": ["must be at least 1"]})
        defs = Definitions(rt, session)
        process_id = defs.process_of(case)
        events = _events(session, [case.id])[case.id]
        if until is not None:  # an operation is atomic: event N's state is the state after its operation
            until = max([op[-1].seq for op in operations(events) if op[0].seq <= until] or [0])
        r, divergence = rebuild(rt, defs, process_id, events, until=until)
        masked = masked_for(user, case)
        shown = [e for e in events if until is None or e.seq <= until]
        out = {"case_no": case.case_no, "process_id": process_id,
               "definition_version": defs.get(process_id, events[0].definition_version).version if events else None,
               "events": len(events), "steps": [_step(e, masked) for e in shown], **_verdict(divergence, events)}
        if until is not None:
            out["as_of"] = _as_of(r, shown, divergence)
        return out


def _as_of(r: Replayer | None, shown: list, divergence) -> dict:
    if r is None or divergence is not None:
        return {"seq": shown[-1].seq if shown else 0, "open_tasks": [], "waiting_timers": [], "deadlines_fired": [],
                "completed": False}
    return {"seq": shown[-1].seq if shown else 0, "open_tasks": r.open_tasks(), "waiting_timers": r.waiting_timers(),
            "deadlines_fired": r.fired, "completed": r.workflow.is_completed()}


def case_path(rt, case_no: str, user=None) -> dict:
    """The element ids the case passed through, in order (up to any divergence of its replay)."""
    with rt.db.read() as session:
        case = find_case(rt, session, case_no, user)
        defs = Definitions(rt, session)
        events = _events(session, [case.id])[case.id]
        r, divergence = rebuild(rt, defs, defs.process_of(case), events)
        return {"case_no": case.case_no, "elements": list(r.path) if r else [],
                "open": [t["element"] for t in r.open_tasks()] if r else [], "consistent": divergence is None}


# -- verification ---------------------------------------------------------------------------


def check_chain(case: Case, events: list) -> tuple[int, str] | None:
    """The first event whose seq or hash is wrong, and why."""
    prev = genesis(case.case_no)
    for n, e in enumerate(events, start=1):
        if e.seq != n:
            return (n, f"event {n} is missing (the next event is {e.seq})" if e.seq > n
                    else f"event {e.seq} appears out of order")
        if e.hash is None or event_hash(prev, e) != e.hash:
            return n, "the event does not match its hash: it was altered, or an earlier event was"
        prev = e.hash
    if (case.last_seq or 0) != len(events):
        return len(events) + 1, f"the case has {case.last_seq} events, the log only {len(events)}: events were deleted"
    return None


def verify_case(rt, defs: Definitions, case: Case, events: list) -> dict:
    out = {"case_no": case.case_no, "ok": False, "seq": None, "problem": None, "events": len(events)}
    broken = check_chain(case, events)
    if broken is not None:
        out["seq"], out["problem"] = broken
        return out
    if not events:
        out["problem"] = "the case has no events"
        return out
    try:
        current = rt.definitions.get(defs.session, case.definition_id)
        stored = state_digest(load_workflow(case.state, current.spec, current.subprocess_specs))
    except Exception as exc:  # an unreadable blob is as much a mismatch as a different one
        stored = f"unreadable ({exc.__class__.__name__})"
    if stored != events[-1].state_digest:
        out["seq"] = events[-1].seq
        out["problem"] = "the stored workflow state does not match the digest recorded by the last event"
        return out
    _, divergence = rebuild(rt, defs, current.process_id, events)
    if divergence is not None:
        out["seq"], out["problem"] = divergence.seq, f"replay diverges: {divergence.reason}"
        return out
    out["ok"] = True
    return out


def verify_cases(rt, case_nos: list[str] | None = None) -> dict:
    """Verify the given cases (all when None): {"checked", "failed", "results": failures only}."""
    failures, checked = [], 0
    with rt.db.read() as session:
        defs = Definitions(rt, session)
        if case_nos is not None:
            batches = [[find_case(rt, session, no) for no in case_nos]]
        else:
            batches = _all_cases(session)
        for batch in batches:
            events = _events(session, [c.id for c in batch])
            # Replays allocate many short-lived task objects: collect once per batch, not every few cases.
            gc.disable()
            try:
                for case in batch:
                    result = verify_case(rt, defs, case, events[case.id])
                    checked += 1
                    if not result["ok"]:
                        failures.append(result)
            finally:
                gc.enable()
            session.expunge_all()
            gc.collect()
    return {"checked": checked, "failed": len(failures), "results": failures}


def _all_cases(session):
    last = 0
    while True:
        batch = session.scalars(select(Case).where(Case.id > last).order_by(Case.id).limit(BATCH)).all()
        if not batch:
            return
        last = batch[-1].id
        yield batch


# -- migration ------------------------------------------------------------------------------


def migrate_cases(rt, case_nos: list[str], to_version: int, dry_run: bool = False, actor: str = "cli") -> list[dict]:
    """Move running cases to `to_version` of their process, each in its own unit of work."""
    return [_migrate_one(rt, no, to_version, dry_run, actor) for no in case_nos]


def _migrate_one(rt, case_no: str, to_version: int, dry_run: bool, actor: str) -> dict:
    scope = rt.db.read() if dry_run else rt.db.write()
    with scope as session:
        case = find_case(rt, session, case_no) if dry_run else _lock_case(rt, session, case_no=case_no)
        defs = Definitions(rt, session)
        current = rt.definitions.get(session, case.definition_id)
        out = {"case_no": case.case_no, "from": current.version, "to": to_version, "reason": None}
        if case.status == CaseStatus.CLOSED.value:
            return dict(out, outcome="refused", reason="the case is closed; it keeps its version")
        if current.version == to_version:
            return dict(out, outcome="unchanged")
        target = defs.get(current.process_id, to_version)
        events = _events(session, [case.id])[case.id]
        r, divergence = rebuild(rt, defs, current.process_id, events, target=target)
        if divergence is None:
            missing = [row.bpmn_id for row in session.scalars(select(CaseTask).where(
                CaseTask.case_id == case.id, CaseTask.state == TaskRowState.READY.value)) if row.id not in r.ids]
            if missing:
                divergence = Diverged(events[-1].seq, f"open tasks {missing} have no place in version {to_version}")
        if divergence is not None:
            return dict(out, outcome="refused", seq=divergence.seq, reason=divergence.reason)
        if dry_run:
            return dict(out, outcome="would_migrate")
        _apply(session, case, target, r, actor, current.version)
        return dict(out, outcome="migrated")


def _apply(session, case: Case, target, r: Replayer, actor: str, old_version: int) -> None:
    now = clock.now()
    task_ids = {}
    for rid, task in list(r.ids.items()):
        row = session.get(CaseTask, rid)
        if row is None or row.state != TaskRowState.READY.value:
            continue
        new = str(task.id)
        task_ids[rid] = new
        # The projection keeps its rows (assignee, deadlines): only their ids follow the new workflow.
        session.execute(update(CaseTask).where(CaseTask.id == rid).values(id=new)
                        .execution_options(synchronize_session=False))
        session.execute(update(Supervision).where(Supervision.task_id == rid).values(task_id=new))
    session.expire_all()
    before = {t.task_id: t.due_at for t in session.scalars(select(CaseTimer).where(CaseTimer.case_id == case.id))}
    sync_timers(session, case.id, before, pending_timers(r.workflow), now)
    case = session.get(Case, case.id)
    case.definition_id = target.id
    case.state = dump_workflow(r.workflow)
    case.serializer_version = SERIALIZER_VERSION
    case.updated_at = now
    case.last_seq = (case.last_seq or 0) + 1
    session.flush()
    append_events(session, case, [dict(seq=case.last_seq, type=MIGRATED, at=now, actor=actor, task_id=None,
                                       element=None, lane=None, definition_version=target.version,
                                       payload={"from": old_version, "to": target.version, "task_ids": task_ids})],
                  state_digest(r.workflow))

