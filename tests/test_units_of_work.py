"""Units of work: locking, conflicts, rollback, handler failures, definition versions, storage."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from engine.core.serializer import state_json
from engine.errors import CaseError, HandlerFailed, StaleVersion
from engine.services import cases
from engine.services.processes import deploy_sources, list_definitions
from engine.store.models import Case, CaseEvent, CaseState, CaseTask, Outbox
from tests.support import Driver


def _snapshot(rt, case_no):
    with rt.db.read() as s:
        case = s.scalar(select(Case).where(Case.case_no == case_no))
        return (case.version, case.state, case.status,
                s.scalar(select(func.count()).select_from(CaseEvent).where(CaseEvent.case_id == case.id)),
                s.scalar(select(func.count()).select_from(CaseTask).where(CaseTask.case_id == case.id)),
                s.scalar(select(func.count()).select_from(Outbox).where(Outbox.case_id == case.id)))


@pytest.mark.parametrize("rounds", [5])
def test_two_threads_completing_one_task_exactly_one_wins(rt, rounds):
    for _ in range(rounds):
        d = Driver.start(rt)
        task = d.open
        barrier = threading.Barrier(2)
        outcomes = []

        def attempt(who):
            barrier.wait()
            try:
                cases.complete_task(rt, task["id"], {"mediation_result": "unresolved"}, who)
                outcomes.append("ok")
            except CaseError as exc:
                outcomes.append(exc.code)

        threads = [threading.Thread(target=attempt, args=(f"user{i}",)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["ok", "task_not_ready"], outcomes
        events = cases.case_events(rt, d.case["case_no"])
        assert [e["element"] for e in events if e["type"] == "task_completed"] == ["mediate"]
        case = cases.get_case(rt, d.case["case_no"])
        assert case["status"] == "signing" and len(case["open_tasks"]) == 1


def test_expected_version_is_checked(rt):
    d = Driver.start(rt)
    with pytest.raises(StaleVersion):
        cases.complete_task(rt, d.open["id"], {"mediation_result": "unresolved"}, "x",
                            expected_version=d.case["version"] + 1)
    ok = cases.complete_task(rt, d.open["id"], {"mediation_result": "unresolved"}, "x",
                             expected_version=d.case["version"])
    assert ok["version"] == d.case["version"] + 1


def test_a_failing_handler_names_the_element_and_changes_nothing(rt):
    d = Driver.start(rt)
    before = _snapshot(rt, d.case["case_no"])

    def broken(ctx, params, data):
        raise RuntimeError("routing service is down")

    rt.handlers["route_case"] = broken
    with pytest.raises(HandlerFailed) as err:
        d.do("mediate", mediation_result="unresolved")
    assert err.value.element == "route_case_task"
    assert "routing service is down" in err.value.message
    assert _snapshot(rt, d.case["case_no"]) == before


def test_unknown_task_and_unknown_case(rt):
    from engine.errors import CaseNotFound, TaskNotFound

    with pytest.raises(TaskNotFound):
        cases.complete_task(rt, "00000000-0000-0000-0000-000000000000", {}, "x")
    with pytest.raises(TaskNotFound):
        cases.complete_task(rt, "not-a-uuid", {}, "x")
    with pytest.raises(CaseNotFound):
        cases.get_case(rt, "1999-000001")


def test_cases_stay_pinned_to_their_version(rt):
    old = Driver.start(rt)
    source = (rt.processes_dir / "community_mediation.bpmn").read_bytes()
    edited = source.replace('name="社区调解"'.encode(), 'name="社区人民调解"'.encode())
    assert edited != source
    results = deploy_sources(rt, {"community_mediation.bpmn": edited}, "designer")
    assert [(r["process_id"], r["version"], r["new"]) for r in results][0] == ("community_mediation", 2, True)
    assert all(r["version"] == 2 and r["new"] for r in results)  # and every procedure calling it
    assert deploy_sources(rt, {"community_mediation.bpmn": edited}, "designer")[0]["new"] is False
    assert [r["version"] for r in list_definitions(rt) if r["process_id"] == "dispute_urban_management"] == [1, 2]
    new = Driver.start(rt)
    assert new.open["name"] == "社区人民调解"
    assert old.open["name"] == "社区调解"
    old.happy_path()
    assert old.case["status"] == "closed"
    with rt.db.read() as s:
        versions = dict(s.execute(select(Case.case_no, Case.definition_id)).all())
    assert versions[old.case["case_no"]] != versions[new.case["case_no"]]


def test_stored_state_leaves_the_spec_out(rt):
    d = Driver.start(rt)
    d.to_signing()
    with rt.db.read() as s:
        blob = s.scalar(select(CaseState.state))
    state = state_json(blob)
    assert '"spec":{' not in state and '"task_specs"' not in state  # sub-workflows name their spec only
    assert len(blob) < 4000  # compressed, spec-free


def test_engine_modules_do_not_know_flask():
    import pathlib

    for path in pathlib.Path("engine").glob("*.py"):
        text = path.read_text()
        assert "import flask" not in text and "from flask" not in text, path
    for path in pathlib.Path("api").glob("*.py"):
        assert "SpiffWorkflow" not in path.read_text(), path
    for path in pathlib.Path("handlers").glob("*.py"):
        text = path.read_text()
        assert "from api" not in text and "import api" not in text, path


def test_postgresql_sessions_run_without_jit_unless_asked(rt, db_url, monkeypatch):
    """The application's PostgreSQL sessions have JIT off (a rollback never undoes it); POSTGRES_JIT=on keeps
    the server's setting."""
    if rt.db.is_sqlite:
        pytest.skip("JIT is PostgreSQL's")
    import sqlalchemy as sa

    from engine.store.db import configure_engine

    with rt.db.write() as session:
        assert session.execute(sa.text("SHOW jit")).scalar() == "off"
        session.rollback()
    with rt.db.read() as session:
        assert session.execute(sa.text("SHOW jit")).scalar() == "off"
    server = sa.create_engine(db_url)
    with server.connect() as conn:
        default = conn.execute(sa.text("SHOW jit")).scalar()  # no hook on a plain engine: the server's
    server.dispose()
    monkeypatch.setenv("POSTGRES_JIT", "on")
    kept = configure_engine(sa.create_engine(db_url))
    with kept.connect() as conn:
        assert conn.execute(sa.text("SHOW jit")).scalar() == default
    kept.dispose()
