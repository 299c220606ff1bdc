"""Failures that are the procedure's fault, met while a user completes a task.

Each fault is a small edit of the standard procedure that passes validation
(the faulty branch depends on the form's data) and fails only when a user
takes that branch: a script whose result is too large to store, a script the
sandbox refuses at run time, a timer expression that gives no ISO 8601 value,
a timer expression that raises, a handler that raises. Each must roll back
(version, events, tasks, state unchanged) and answer a clear error naming the
BPMN element: `definition_error` (500), or `handler_failed` (502) for a
handler; never a bare `engine_error`.
"""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from engine.errors import DefinitionError
from engine.services.processes import deploy_sources
from engine.store.models import Case, CaseEvent, CaseTask, Outbox
from tests.api_support import ApiClient
from tests.support import Driver

RESOLVED = {"mediation_result": "resolved", "mediation_note": "已当场调解"}
UNRESOLVED = {"mediation_result": "unresolved"}
REPLY = b"<bpmn:script>reply_text = mediation_note"
SIGN_FOR_DUE = b"<bpmn:timeDate>due_at('sign_for')</bpmn:timeDate>"

# name -> (text replaced, replacement, form of the `mediate` step, element at fault, words of the reason)
FAULTS = {
    "script_result_too_large": (
        REPLY, b"<bpmn:script>x = [mediation_note] * 1000\ny = [x] * 1000000\nreply_text = mediation_note",
        RESOLVED, "prepare_community_reply", "variable 'y' is too large to store"),
    "script_refused_at_run_time": (
        REPLY, b"<bpmn:script>reply_text = mediation_note\nn = 'x' * 10 ** (len(reply_text) + 6)",
        RESOLVED, "prepare_community_reply", "line 2: refused by the sandbox: result of 100,000,000,000 items"),
    "timer_value_not_iso": (
        SIGN_FOR_DUE, b"<bpmn:timeDate>due_at('sign_for') if mediation_result != 'unresolved' else 'soon'"
                      b"</bpmn:timeDate>",
        UNRESOLVED, "due_sign_for", "no valid ISO 8601"),
    "timer_expression_raises": (
        SIGN_FOR_DUE, b"<bpmn:timeDate>due_at('sign_for' if mediation_result != 'unresolved' else 'nope')"
                      b"</bpmn:timeDate>",
        UNRESOLVED, "due_sign_for", "no time limit for step 'nope'"),
}


def deploy_fault(rt, name: str) -> None:
    old, new, *_ = FAULTS[name]
    # Sign-for is a shared sub-procedure: changing it makes new versions of its callers too.
    file = "unit_sign_for.bpmn" if old == SIGN_FOR_DUE else "dispute_urban_management.bpmn"
    source = (rt.processes_dir / file).read_bytes()
    assert source.count(old) == 1
    results = deploy_sources(rt, {file: source.replace(old, new)}, "designer")
    assert results[0]["process_id"] == file.removesuffix(".bpmn")
    assert all(r["new"] for r in results)  # it passed validation


def snapshot(rt, case_no: str) -> tuple:
    """Everything an operation on the case could change."""
    with rt.db.read() as s:
        case = s.scalar(select(Case).where(Case.case_no == case_no))
        tasks = s.execute(select(CaseTask.id, CaseTask.state, CaseTask.assignee)
                          .where(CaseTask.case_id == case.id).order_by(CaseTask.id)).all()
        return (case.version, case.state, case.status, case.last_seq, tuple(tasks),
                s.scalar(select(func.count()).select_from(CaseEvent).where(CaseEvent.case_id == case.id)),
                s.scalar(select(func.count()).select_from(Outbox).where(Outbox.case_id == case.id)))


# -- the engine -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", FAULTS)
def test_a_faulty_procedure_rolls_back_and_names_the_element(rt, name):
    _, _, form, element, words = FAULTS[name]
    deploy_fault(rt, name)
    d = Driver.start(rt)
    before = snapshot(rt, d.case["case_no"])
    with pytest.raises(DefinitionError) as caught:
        d.do("mediate", **form)
    err = caught.value
    assert (err.code, err.status, err.element) == ("definition_error", 500, element)
    assert words in err.message and err.message.startswith(f"{element}: ")
    assert snapshot(rt, d.case["case_no"]) == before
    # The other branch of the same procedure still runs: only the faulty path fails.
    other = UNRESOLVED if form is RESOLVED else RESOLVED
    d.do("mediate", **other)
    assert snapshot(rt, d.case["case_no"])[0] == before[0] + 1


# -- over HTTP --------------------------------------------------------------------------------

def _claimed_mediation(api) -> tuple[str, str]:
    """A new case whose mediation task the community's acceptor has claimed: (case_no, task id)."""
    case_no = api.register()["case_no"]
    task = api.open_task(case_no)
    assert api.post(f"/api/v1/tasks/{task['id']}/claim", "yjp_acceptor").status_code == 200
    return case_no, task["id"]


@pytest.mark.parametrize("name", FAULTS)
def test_over_http_the_error_names_the_element_and_nothing_changes(api, rt, name):
    _, _, form, element, words = FAULTS[name]
    deploy_fault(rt, name)
    case_no, task_id = _claimed_mediation(api)
    before = snapshot(rt, case_no)
    resp = api.post(f"/api/v1/tasks/{task_id}/complete", "yjp_acceptor", {"data": form})
    body = resp.get_json()
    assert resp.status_code == 500, body
    assert set(body) == {"code", "message", "errors", "element"}
    assert (body["code"], body["element"], body["errors"]) == ("definition_error", element, {})
    assert words in body["message"]
    assert snapshot(rt, case_no) == before
    assert api.open_task(case_no)["id"] == task_id


def test_over_http_a_failing_handler_is_a_502_naming_the_element(api, rt):
    case_no, task_id = _claimed_mediation(api)
    before = snapshot(rt, case_no)

    def broken(ctx, params, data):
        raise RuntimeError("routing service is down")

    rt.handlers["route_case"] = broken
    resp = api.post(f"/api/v1/tasks/{task_id}/complete", "yjp_acceptor", {"data": UNRESOLVED})
    body = resp.get_json()
    assert resp.status_code == 502, body
    assert (body["code"], body["element"], body["handler"]) == ("handler_failed", "route_case_task", "route_case")
    assert "routing service is down" in body["message"]
    assert snapshot(rt, case_no) == before


def test_a_result_too_large_is_refused_while_an_intake_goes_through(app, demo, rt):
    """The walk over the script's results stops at the size limit and the operation rolls back, releasing
    the case lock (on SQLite the database's one writer lock): an intake sent meanwhile is registered."""
    deploy_fault(rt, "script_result_too_large")
    first = ApiClient(app.test_client(), demo)
    case_no, task_id = _claimed_mediation(first)
    before = snapshot(rt, case_no)
    answers: dict = {}
    started = threading.Barrier(2)

    def complete():
        client = ApiClient(app.test_client(), demo)
        started.wait()
        answers["complete"] = client.post(f"/api/v1/tasks/{task_id}/complete", "yjp_acceptor", {"data": RESOLVED})

    def register():
        client = ApiClient(app.test_client(), demo)
        started.wait()
        answers["intake"] = client.post("/api/v1/cases", "yjp_acceptor", _intake_body())

    threads = [threading.Thread(target=complete), threading.Thread(target=register)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    refused = answers["complete"].get_json()
    assert answers["complete"].status_code == 500 and refused["code"] == "definition_error"
    assert refused["element"] == "prepare_community_reply" and "too large to store" in refused["message"]
    assert answers["intake"].status_code == 201, answers["intake"].get_json()
    assert snapshot(rt, case_no) == before
    # Afterwards the case takes the other branch as if nothing had happened.
    resp = first.post(f"/api/v1/tasks/{task_id}/complete", "yjp_acceptor", {"data": UNRESOLVED})
    assert resp.status_code == 200, resp.get_json()


def _intake_body() -> dict:
    from tests.api_support import intake_body

    return intake_body(title="同时受理的另一件")
