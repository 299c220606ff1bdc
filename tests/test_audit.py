"""The audit trail: hash chain, replay on every path, tampering detected, migration, on both databases."""
from __future__ import annotations

import re
import zlib
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from engine.services import audit, cases
from engine.services.processes import deploy_paths
from engine.store.ledger import state_digest
from engine.store.models import Case, CaseEvent, CaseState
from tests.support import Driver
from timers import TimerService

BPMN = "dispute_urban_management.bpmn"


def consistent(rt, case_no):
    result = audit.verify_cases(rt, [case_no])
    assert result == {"checked": 1, "failed": 0, "results": []}, result
    replay = audit.replay_case(rt, case_no)
    assert replay["verdict"] == "consistent", replay["verdict"]
    return replay


def run_timers(rt):
    return TimerService(rt, "test-worker").run_until_idle()


# -- every path of the standard procedure -------------------------------------------------


def happy(rt, clock):
    Driver.start(rt).happy_path()


def resolved_by_community(rt, clock):
    d = Driver.start(rt)
    d.do("mediate", mediation_result="resolved", mediation_note="双方达成调解协议")
    d.do("evaluate", rating="basically_satisfied")


def returned_from_approval(rt, clock):
    d = Driver.start(rt)
    d.to_signing()
    d.do("sign_for", decision="accept", responsible_section="执法一科", responsible_person="李四")
    d.do("handle", result="初步处理", measures="电话沟通")
    d.do("approve", decision="return", return_reason="未现场核实")
    d.handle_again()
    d.do("evaluate", rating="satisfied")


def rework_cap_then_ruling(rt, clock):
    d = Driver.start(rt)
    d.to_signing()
    d.handle_and_approve()
    for _ in range(rt.tables.time_limits["rework"]["max_reworks"]):
        clock.advance(hours=3)
        d.do("evaluate", rating="not_implemented")
        d.do("review", instructions="返工")
        d.handle_again()
    d.do("evaluate", rating="dissatisfied")
    d.do("decide", ruling="已穷尽化解措施，依法终结")


def street_assigns(rt, clock):
    d = Driver.start(rt)
    d.do("mediate", mediation_result="escalate")
    clock.advance(days=1)
    d.do("street_coordinate", decision="assign", opinion="交住建局", assign_unit="YC-ZJJ")
    d.do("sign_for", decision="accept", responsible_section="s", responsible_person="p")


def yellow_red_lights(rt, clock):
    d = Driver.start(rt)
    d.to_signing()
    due = datetime.fromisoformat(d.open["due_at"])
    clock.set(datetime.fromisoformat(d.open["warn_at"]) + timedelta(minutes=5))
    run_timers(rt)
    clock.set(due + timedelta(hours=1))
    run_timers(rt)
    d.case = cases.get_case(rt, d.case["case_no"])
    d.handle_and_approve()


def ladder_by_timers(rt, clock):
    d = Driver.start(rt)
    for _ in range(6):
        case = cases.get_case(rt, d.case["case_no"])
        if case["level"] == "joint_meeting" or not case["open_tasks"]:
            break
        clock.set(datetime.fromisoformat(case["open_tasks"][0]["due_at"]) + timedelta(minutes=1))
        run_timers(rt)


PATHS = [happy, resolved_by_community, returned_from_approval, rework_cap_then_ruling, street_assigns,
         yellow_red_lights, ladder_by_timers]


@pytest.mark.parametrize("path", PATHS, ids=[p.__name__ for p in PATHS])
def test_replay_is_consistent_on_every_path(rt, clock, path):
    path(rt, clock)
    with rt.db.read() as s:
        case_no = s.scalar(select(Case.case_no))
        types = set(s.scalars(select(CaseEvent.type)))
    replay = consistent(rt, case_no)
    assert [s["seq"] for s in replay["steps"]] == list(range(1, replay["events"] + 1))
    if path in (yellow_red_lights, ladder_by_timers):
        assert "timer_fired" in types
    if path is rework_cap_then_ruling:
        assert audit.case_path(rt, case_no)["elements"].count("review") == \
            rt.tables.time_limits["rework"]["max_reworks"]


def test_events_are_chained_and_the_stored_state_matches_the_last_digest(rt, clock):
    d = Driver.start(rt)
    d.to_signing()
    with rt.db.read() as s:
        case = s.scalar(select(Case))
        events = s.scalars(select(CaseEvent).order_by(CaseEvent.seq)).all()
        definition = rt.definitions.get(s, case.definition_id)
        from engine.core.serializer import load_workflow
        assert state_digest(load_workflow(case.state, definition.spec, definition.subprocess_specs)) \
            == events[-1].state_digest
        assert all(len(e.hash) == 32 and len(e.state_digest) == 32 for e in events)
        assert audit.check_chain(case, events) is None
        assert events[0].op_seq == 1 and len({e.op_seq for e in events}) < len(events)


def test_path_and_state_as_of_an_event(rt, clock):
    d = Driver.start(rt)
    d.to_signing()
    no = d.case["case_no"]
    clock.set(datetime.fromisoformat(d.open["warn_at"]) + timedelta(minutes=1))
    run_timers(rt)
    path = audit.case_path(rt, no)
    assert [e for e in path["elements"] if e in ("start", "mediate", "gw_mediated")] == ["start", "mediate",
                                                                                          "gw_mediated"]
    assert "route_case_task" in path["elements"] and path["open"] == ["sign_for"]
    events = cases.case_events(rt, no)
    ready = next(e["seq"] for e in events if e["type"] == "task_ready" and e["element"] == "sign_for")
    as_of = audit.replay_case(rt, no, until=ready)["as_of"]
    assert [t["element"] for t in as_of["open_tasks"]] == ["sign_for"]
    assert {t["element"] for t in as_of["waiting_timers"]} == {"warn_sign_for", "due_sign_for"}
    assert as_of["deadlines_fired"] == []
    now = audit.replay_case(rt, no, until=len(events))["as_of"]
    assert [f["element"] for f in now["deadlines_fired"]] == ["warn_sign_for"]
    assert {t["element"] for t in now["waiting_timers"]} == {"due_sign_for"}


# -- the procedure's file edited and redeployed ---------------------------------------------------


def deploy_edited(rt, tmp_path, edit, file: str = BPMN) -> int:
    """Deploy an edit of `file`; the new version of the category procedure (a shared file's callers get one)."""
    source = (rt.processes_dir / file).read_text(encoding="utf-8")
    path = tmp_path / file
    path.write_text(edit(source), encoding="utf-8")
    result = deploy_paths(rt, [path], "tests")
    assert result[0]["new"], result
    return next(r["version"] for r in result if r["process_id"] == BPMN.removesuffix(".bpmn"))


def relabel(source: str) -> str:
    return source.replace('name="社区调解"', 'name="社区调解（新）"', 1)


def rename_handle(source: str) -> str:
    source = re.sub(r'"handle"', '"handle_step"', source)
    return re.sub(r">handle<", ">handle_step<", source)


def test_replay_still_consistent_after_the_file_is_edited_and_redeployed(rt, clock, tmp_path):
    old = Driver.start(rt)
    old.happy_path()
    running = Driver.start(rt)
    running.to_signing()
    assert deploy_edited(rt, tmp_path, rename_handle, "unit_handling.bpmn") == 2
    new = Driver.start(rt)
    assert new.case["case_no"] and new.open["element"] == "mediate"
    new.to_signing()
    new.do("sign_for", decision="accept", responsible_section="s", responsible_person="p")
    assert new.open["element"] == "handle_step"
    running.do("sign_for", decision="accept", responsible_section="s", responsible_person="p")
    assert running.open["element"] == "handle"  # pinned to version 1
    for d in (old, running, new):
        consistent(rt, d.case["case_no"])
    assert audit.verify_cases(rt) == {"checked": 3, "failed": 0, "results": []}


# -- tampering ------------------------------------------------------------------------------


@pytest.fixture
def tamper(rt, db_url):
    """Run raw SQL as an attacker with the database's owner rights (the trigger disabled on PostgreSQL)."""
    engine = sa.create_engine(db_url)
    pg = engine.dialect.name == "postgresql"

    def run(sql, **params):
        with engine.begin() as conn:
            if pg:
                conn.execute(sa.text("ALTER TABLE case_event DISABLE TRIGGER case_event_append_only"))
            conn.execute(sa.text(sql), params)
            if pg:
                conn.execute(sa.text("ALTER TABLE case_event ENABLE TRIGGER case_event_append_only"))

    yield run
    engine.dispose()


def closed_case(rt):
    d = Driver.start(rt)
    d.happy_path()
    consistent(rt, d.case["case_no"])
    return case_record(rt)


def case_record(rt):
    with rt.db.read() as s:
        c = s.scalar(select(Case).order_by(Case.id.desc()))
        return SimpleNamespace(id=c.id, case_no=c.case_no, last_seq=c.last_seq, state=c.state)


def failure(rt, case_no):
    result = audit.verify_cases(rt)
    assert result["failed"] == 1, result
    [r] = result["results"]
    assert r["case_no"] == case_no
    return r


def test_a_changed_payload_is_detected_and_named(rt, clock, tamper):
    case = closed_case(rt)
    with rt.db.read() as s:
        seq = s.scalar(select(CaseEvent.seq).where(CaseEvent.type == "task_completed", CaseEvent.element == "handle"))
    tamper("UPDATE case_event SET payload = :p WHERE case_id = :c AND seq = :s",
           p='{"data": {"result": "已修复!", "measures": "约谈"}}', c=case.id, s=seq)
    r = failure(rt, case.case_no)
    assert r["seq"] == seq and "hash" in r["problem"]


def test_one_changed_byte_of_an_actor_is_detected(rt, clock, tamper):
    case = closed_case(rt)
    tamper("UPDATE case_event SET actor = 'someonf' WHERE case_id = :c AND seq = 3", c=case.id)
    assert failure(rt, case.case_no)["seq"] == 3


def test_reordered_events_are_detected(rt, clock, tamper):
    case = closed_case(rt)
    tamper("UPDATE case_event SET seq = -1 WHERE case_id = :c AND seq = 4", c=case.id)
    tamper("UPDATE case_event SET seq = 4 WHERE case_id = :c AND seq = 5", c=case.id)
    tamper("UPDATE case_event SET seq = 5 WHERE case_id = :c AND seq = -1", c=case.id)
    assert failure(rt, case.case_no)["seq"] == 4


def test_a_deleted_event_is_detected(rt, clock, tamper):
    case = closed_case(rt)
    tamper("DELETE FROM case_event WHERE case_id = :c AND seq = 6", c=case.id)
    r = failure(rt, case.case_no)
    assert r["seq"] == 6 and "missing" in r["problem"]


def test_a_deleted_last_event_is_detected(rt, clock, tamper):
    case = closed_case(rt)
    tamper("DELETE FROM case_event WHERE case_id = :c AND seq = :s", c=case.id, s=case.last_seq)
    assert "deleted" in failure(rt, case.case_no)["problem"]


def test_a_changed_stored_state_is_detected(rt, clock, tamper):
    d = Driver.start(rt)
    d.to_signing()
    case = case_record(rt)
    text = zlib.decompress(case.state).decode("utf-8").replace('"rework_count":0', '"rework_count":1')
    with rt.db.write() as s:
        s.execute(sa.update(CaseState).where(CaseState.case_id == case.id).values(state=zlib.compress(text.encode("utf-8"))))
    r = failure(rt, case.case_no)
    assert r["seq"] == case.last_seq and "stored workflow state" in r["problem"]
    with rt.db.write() as s:
        s.execute(sa.update(CaseState).where(CaseState.case_id == case.id)
                  .values(state=case.state[:-1] + bytes([case.state[-1] ^ 0xFF])))
    assert "stored workflow state" in failure(rt, case.case_no)["problem"]


def test_rehashed_forgery_is_caught_by_the_replay(rt, clock, tamper):
    """An attacker who recomputes the chain after changing submitted data is still caught by the replay."""
    from engine.store.ledger import event_hash, genesis

    case = closed_case(rt)
    with rt.db.read() as s:
        events = s.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.seq)).all()
        s.expunge_all()
    target = next(e for e in events if e.type == "task_completed" and e.element == "mediate")
    prev = genesis(case.case_no)
    for e in events:
        if e.seq == target.seq:
            e.payload = {"data": {"mediation_result": "resolved", "mediation_note": "伪造"}}
        prev = event_hash(prev, e)
        tamper("UPDATE case_event SET payload = :p, hash = :h WHERE id = :i",
               p=__import__("json").dumps(e.payload, ensure_ascii=False), h=prev, i=e.id)
    r = failure(rt, case.case_no)
    assert r["seq"] >= target.seq and "replay diverges" in r["problem"]


def test_postgresql_refuses_update_and_delete_of_events(rt, clock, db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("the trigger exists on PostgreSQL only")
    Driver.start(rt)
    engine = sa.create_engine(db_url)
    try:
        for sql in ("UPDATE case_event SET actor = 'x'", "DELETE FROM case_event"):
            with pytest.raises(sa.exc.DBAPIError, match="append-only"):
                with engine.begin() as conn:
                    conn.execute(sa.text(sql))
    finally:
        engine.dispose()


# -- migration -------------------------------------------------------------------------------


def test_migration_dry_run_refuses_a_divergent_case_and_accepts_a_compatible_one(rt, clock, tmp_path):
    early = Driver.start(rt)                 # at mediate: its history fits a version without "handle"
    late = Driver.start(rt)
    late.to_signing()
    late.do("sign_for", decision="accept", responsible_section="s", responsible_person="p")   # "handle" is ready
    v2 = deploy_edited(rt, tmp_path, rename_handle, "unit_handling.bpmn")
    nos = [early.case["case_no"], late.case["case_no"]]
    dry = {r["case_no"]: r for r in audit.migrate_cases(rt, nos, v2, dry_run=True)}
    assert dry[early.case["case_no"]]["outcome"] == "would_migrate"
    assert dry[late.case["case_no"]]["outcome"] == "refused"
    assert "handle" in dry[late.case["case_no"]]["reason"]
    with rt.db.read() as s:
        assert s.scalar(select(sa.func.count()).select_from(CaseEvent).where(CaseEvent.type == "case_migrated")) == 0

    applied = {r["case_no"]: r["outcome"] for r in audit.migrate_cases(rt, nos, v2, actor="auditor")}
    assert applied == {early.case["case_no"]: "migrated", late.case["case_no"]: "refused"}
    events = cases.case_events(rt, early.case["case_no"])
    assert events[-1]["type"] == "case_migrated" and events[-1]["payload"]["from"] == 1
    assert events[-1]["definition_version"] == v2
    consistent(rt, early.case["case_no"])
    early.case = cases.get_case(rt, early.case["case_no"])
    early.to_signing()
    early.do("sign_for", decision="accept", responsible_section="s", responsible_person="p")
    assert early.open["element"] == "handle_step"
    early.do("handle_step", result="r", measures="m")
    consistent(rt, early.case["case_no"])
    assert audit.migrate_cases(rt, [early.case["case_no"]], v2)[0]["outcome"] == "unchanged"
    assert audit.verify_cases(rt)["failed"] == 0


def test_relabelled_version_accepts_a_case_in_the_middle(rt, clock, tmp_path):
    d = Driver.start(rt)
    d.to_signing()
    v2 = deploy_edited(rt, tmp_path, relabel)
    assert audit.migrate_cases(rt, [d.case["case_no"]], v2, dry_run=True)[0]["outcome"] == "would_migrate"
    assert audit.migrate_cases(rt, [d.case["case_no"]], v2)[0]["outcome"] == "migrated"
    d.case = cases.get_case(rt, d.case["case_no"])
    d.do("sign_for", decision="accept", responsible_section="s", responsible_person="p")
    v3 = deploy_edited(rt, tmp_path, lambda src: relabel(src).replace('name="签收"', 'name="签收（新）"', 1))
    assert audit.migrate_cases(rt, [d.case["case_no"]], v3)[0]["outcome"] == "migrated"
    consistent(rt, d.case["case_no"])
    d.case = cases.get_case(rt, d.case["case_no"])
    d.handle_again()
    d.do("evaluate", rating="satisfied")
    consistent(rt, d.case["case_no"])


# -- the command line ------------------------------------------------------------------------


def test_cli_verify_replay_and_migrate(app, rt, clock, tamper, tmp_path):
    case = closed_case(rt)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["audit", "verify", "--all"])
    assert result.exit_code == 0 and "1 case(s) verified" in result.output
    result = runner.invoke(args=["audit", "replay", case.case_no, "--until", "2"])
    assert result.exit_code == 0 and result.output.rstrip().endswith(f"{case.case_no}: consistent")
    assert "as of event 2: open mediate (unclaimed)" in result.output
    result = runner.invoke(args=["audit", "migrate", case.case_no, "--to-version", "1", "--dry-run"])
    assert result.exit_code == 1 and "closed" in result.output
    tamper("UPDATE case_event SET actor = 'mallory' WHERE case_id = :c AND seq = 2", c=case.id)
    result = runner.invoke(args=["audit", "verify", case.case_no])
    assert result.exit_code == 1 and f"{case.case_no}: event 2:" in result.output
    result = runner.invoke(args=["audit", "replay", "2025-999999"])
    assert result.exit_code == 1 and "does not exist" in result.output and "Traceback" not in result.output
