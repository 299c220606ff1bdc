"""Optimistic steps on SQLite: a completion computes its step without the database's write lock, then checks
that its case has not moved when it takes the lock (engine.store.db, `write(optimistic=True)`).

Each test pauses a completion in the middle of its step (after its reads, before its first write) and lets a
second, real transaction on another thread commit there: with the lock held from the first statement, as
before, that writer could not commit until the step ended. What the second writer did decides the first
one's fate: a claim or a completion of the same task makes the step run again under the lock and answer as
if it had come second; a change to another case leaves it alone.
"""
from __future__ import annotations

import sqlite3
import threading

import pytest
from sqlalchemy import select, update

from engine.core.operation import CaseOperation
from engine.errors import DatabaseUnavailable, TaskClaimed, TaskNotReady
from engine.rules.access import Caller
from engine.services import cases, tasks
from engine.store.models import CaseTask
from tests.support import Driver

MEDIATED = {"mediation_result": "unresolved"}


@pytest.fixture
def sqlite_rt(rt):
    if not rt.db.is_sqlite:
        pytest.skip("optimistic steps are SQLite's: PostgreSQL locks the case row and nothing database-wide")
    return rt


def _candidate(rt, task_id: str, name: str) -> Caller:
    with rt.db.read() as s:
        row = s.get(CaseTask, task_id)
        unit = rt.tables.units[row.unit_code]
        return Caller(username=name, display_name=name, unit_code=row.unit_code, unit_kind=unit.kind,
                      roles=frozenset({row.role}))


def _meanwhile(monkeypatch, action):
    """Run `action` on another thread, once, while the next completion is between its reads and its writes;
    what it returned or raised is in the list returned."""
    done: list = []
    started = threading.Event()
    original = CaseOperation.complete_task

    def paused(op, task, data):
        if not started.is_set():
            started.set()  # once: the other writer's own completion passes straight through

            def run():
                try:
                    done.append(action())
                except Exception as exc:  # noqa: BLE001 - handed to the test
                    done.append(exc)

            other = threading.Thread(target=run)
            other.start()
            other.join(timeout=15)
            assert not other.is_alive(), "the other writer waited for the step's lock: the step held it"
        return original(op, task, data)

    monkeypatch.setattr(CaseOperation, "complete_task", paused)
    return done


def test_a_claim_committed_during_the_step_wins_and_the_step_answers_task_claimed(sqlite_rt, monkeypatch):
    rt = sqlite_rt
    d = Driver.start(rt)
    task_id = d.open["id"]
    first, second = _candidate(rt, task_id, "first"), _candidate(rt, task_id, "second")
    done = _meanwhile(monkeypatch, lambda: tasks.claim_task(rt, task_id, second))
    moved = rt.db.moved
    with pytest.raises(TaskClaimed) as err:
        cases.complete_task(rt, task_id, MEDIATED, user=first)
    assert err.value.details["assignee"] == "second"
    assert isinstance(done[0], dict) and done[0]["assignee"] == "second"
    assert rt.db.moved == moved + 1
    with rt.db.read() as s:
        row = s.get(CaseTask, task_id)
        assert (row.state, row.assignee) == ("ready", "second")
    events = [e["type"] for e in cases.case_events(rt, d.case["case_no"])]
    assert events.count("task_claimed") == 1 and "task_completed" not in events


def test_a_completion_committed_during_the_step_makes_it_task_not_ready(sqlite_rt, monkeypatch):
    rt = sqlite_rt
    d = Driver.start(rt)
    task_id = d.open["id"]
    first, second = _candidate(rt, task_id, "first"), _candidate(rt, task_id, "second")
    done = _meanwhile(monkeypatch, lambda: cases.complete_task(rt, task_id, MEDIATED, user=second))
    moved = rt.db.moved
    with pytest.raises(TaskNotReady):
        cases.complete_task(rt, task_id, MEDIATED, user=first)
    assert isinstance(done[0], dict), done
    assert rt.db.moved == moved + 1
    events = cases.case_events(rt, d.case["case_no"])
    completed = [(e["element"], e["actor"]) for e in events if e["type"] == "task_completed"]
    assert completed == [("mediate", "second")]
    assert cases.get_case(rt, d.case["case_no"])["version"] == d.case["version"] + 1


def test_a_write_to_another_case_during_the_step_leaves_it_alone(sqlite_rt, monkeypatch):
    rt = sqlite_rt
    d, other = Driver.start(rt), Driver.start(rt)
    task_id = d.open["id"]
    done = _meanwhile(monkeypatch, lambda: cases.complete_task(rt, other.open["id"], MEDIATED, "someone"))
    moved = rt.db.moved
    after = cases.complete_task(rt, task_id, MEDIATED, "someone")
    assert isinstance(done[0], dict) and done[0]["status"] == "signing"
    assert rt.db.moved == moved
    assert after["status"] == "signing" and after["version"] == d.case["version"] + 1
    with rt.db.read() as s:
        states = dict(s.execute(select(CaseTask.bpmn_id, CaseTask.state).where(CaseTask.id == task_id)).all())
    assert states == {"mediate": "completed"}


def test_a_first_write_inside_a_savepoint_is_refused_and_changes_nothing(sqlite_rt):
    rt = sqlite_rt
    d = Driver.start(rt)
    with pytest.raises(RuntimeError, match="savepoint"):
        with rt.db.write(optimistic=True) as session:
            with session.begin_nested():
                session.execute(update(CaseTask).where(CaseTask.id == d.open["id"]).values(assignee="x"))
    with rt.db.read() as s:
        assert s.get(CaseTask, d.open["id"]).assignee is None
    # and nothing holds the write lock: a plain write goes through at once
    with rt.db.write() as session:
        session.execute(update(CaseTask).where(CaseTask.id == d.open["id"]).values(assignee="y"))
    with rt.db.read() as s:
        assert s.get(CaseTask, d.open["id"]).assignee == "y"


def test_a_lock_not_had_within_the_busy_timeout_is_unavailable_and_then_works(db_url, clock):
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite's write lock")
    from app import create_app, runtime_of
    from engine.services.processes import deploy_paths

    app = create_app({"SQLALCHEMY_DATABASE_URI": db_url, "TESTING": True, "SQLITE_BUSY_TIMEOUT": 0.3})
    rt = runtime_of(app)
    deploy_paths(rt, None, "tests")
    d = Driver.start(rt)
    holder = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(DatabaseUnavailable):
            cases.complete_task(rt, d.open["id"], MEDIATED, "someone")  # its reads went on; its lock did not
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert cases.get_case(rt, d.case["case_no"])["version"] == d.case["version"]
    after = cases.complete_task(rt, d.open["id"], MEDIATED, "someone")  # the process's writer queue is free
    assert after["status"] == "signing"
    rt.db.engine.dispose()
