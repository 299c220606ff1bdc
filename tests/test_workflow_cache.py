"""The workflow cache (engine.core.workflow_cache): a step reuses the workflow its process last saved only
while the stored state is still exactly what was saved; any other writer's change makes it read the state."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from engine.core.serializer import load_workflow
from engine.errors import InvalidInput
from engine.services import audit, cases
from engine.store.ledger import state_digest
from engine.store.models import Case
from tests.support import Driver


def _stored(rt, case_no: str):
    with rt.db.read() as s:
        case = s.scalar(sa.select(Case).where(Case.case_no == case_no))
        return case.id, case.definition_id, case.state


def test_a_held_workflow_is_the_stored_one_and_is_reused(rt):
    driver = Driver.start(rt)
    case_no = driver.case["case_no"]
    for step in (driver.to_signing, driver.handle_and_approve):
        step()
        case_id, definition_id, state = _stored(rt, case_no)
        held = rt.workflows.take(case_id, definition_id, state)
        assert held is not None, "the operation that saved the state holds its workflow"
        with rt.db.read() as s:
            definition = rt.definitions.get(s, definition_id)
        fresh = load_workflow(state, definition.spec, definition.subprocess_specs)
        assert state_digest(held) == state_digest(fresh)
        rt.workflows.keep(case_id, definition_id, state, held)  # put back, as found
    hits = rt.workflows.hits
    driver.do("evaluate", rating="satisfied")
    assert rt.workflows.hits == hits + 1  # the last step did not deserialize
    assert driver.case["status"] == "closed"
    assert audit.verify_cases(rt, [case_no])["failed"] == 0


def test_a_step_taken_elsewhere_makes_the_held_workflow_stale(app, rt, db_url):
    """Two processes (two apps on one database): each step reads what the other one saved."""
    from app import create_app, runtime_of

    other_app = create_app({"SQLALCHEMY_DATABASE_URI": db_url, "TESTING": True})
    other = runtime_of(other_app)
    try:
        driver = Driver.start(rt)
        driver.to_signing()  # this process holds the workflow after mediate
        Driver(other, driver.case).do("sign_for", decision="accept", responsible_section="执法一科",
                                      responsible_person=driver.handler())
        misses = rt.workflows.misses
        driver.case = cases.get_case(rt, driver.case["case_no"])
        driver.do("handle", result="已责令整改", measures="现场查看")  # here again: the held one is stale
        assert rt.workflows.misses == misses + 1
        assert driver.open["element"] == "approve"
        assert audit.verify_cases(rt, [driver.case["case_no"]])["failed"] == 0
    finally:
        with other_app.app_context():
            from app import db

            db.engine.dispose()


def test_a_failed_step_leaves_nothing_held(rt):
    driver = Driver.start(rt)
    driver.to_signing()
    task = driver.open
    with pytest.raises(InvalidInput):
        cases.complete_task(rt, task["id"], {"decision": "no such decision"}, "someone")
    case_id, definition_id, state = _stored(rt, driver.case["case_no"])
    assert rt.workflows.take(case_id, definition_id, state) is None  # taken by the failed step, not put back
    driver.handle_and_approve()
    assert driver.open["element"] == "evaluate"


def test_size_zero_turns_the_cache_off():
    from engine.core.workflow_cache import WorkflowCache

    cache = WorkflowCache(0)
    cache.keep(1, 1, b"x", object())
    assert cache.take(1, 1, b"x") is None


def test_the_least_recently_saved_is_dropped_first():
    from engine.core.workflow_cache import WorkflowCache

    cache = WorkflowCache(2)
    one, two, three = object(), object(), object()
    cache.keep(1, 7, b"a", one)
    cache.keep(2, 7, b"b", two)
    cache.keep(3, 7, b"c", three)
    assert cache.take(1, 7, b"a") is None
    assert cache.take(2, 7, b"b") is two
    assert cache.take(3, 7, b"other bytes") is None  # stale: the stored state moved on
    assert cache.take(3, 7, b"c") is None  # and the stale entry is gone
