"""The standard procedure end to end through the case services, on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from engine.errors import InvalidForm, InvalidInput, TaskNotReady
from engine.services import cases
from engine.store.models import Case, CaseEvent, Outbox
from tests.support import COMMUNITY, Driver


def _events(rt, case_no):
    return [(e["type"], e["element"]) for e in cases.case_events(rt, case_no)]


def test_happy_path(rt):
    d = Driver.start(rt)
    assert d.case["case_no"].startswith("2025-")
    assert d.case["status"] == "mediating" and d.open["element"] == "mediate"
    assert d.open["lane"] == "社区" and d.open["role"] == "acceptor" and d.open["unit"] == COMMUNITY
    d.to_signing()
    assert d.case["status"] == "signing" and d.case["routed_unit"] == "YC-CGJ"
    assert d.open["unit"] == "YC-CGJ" and d.open["role"] == "handler"
    d.do("sign_for", decision="accept", responsible_section="执法一科", responsible_person="李四")
    assert d.case["status"] == "handling"
    d.do("handle", result="已修复", measures="约谈")
    assert d.case["status"] == "approving" and d.open["role"] == "leader"
    d.do("approve", decision="approve")
    assert d.case["status"] == "evaluating" and d.case["reply"]["text"] == "已修复"
    d.do("evaluate", rating="satisfied")
    assert d.case["status"] == "closed" and d.case["closed_at"] and d.case["open_tasks"] == []
    assert d.case["rating"] == "satisfied"

    events = _events(rt, d.case["case_no"])
    assert events[0] == ("case_started", None)
    assert ("service_called", "route_case_task") in events
    assert ("service_called", "unified_reply_task") in events
    assert events[-1] == ("case_completed", None)
    completed = [el for t, el in events if t == "task_completed"]
    assert completed == ["mediate", "sign_for", "handle", "approve", "evaluate"]
    seqs = [e["seq"] for e in cases.case_events(rt, d.case["case_no"])]
    assert seqs == list(range(1, len(seqs) + 1))
    with rt.db.read() as s:
        kinds = sorted(s.scalars(select(Outbox.recipient_kind)).all())
    assert kinds == ["citizen", "citizen", "unit", "unit"]  # the citizen: the tracking code, then the reply


def test_resolved_by_community(rt):
    d = Driver.start(rt)
    d.do("mediate", mediation_result="resolved", mediation_note="双方达成调解协议")
    assert d.case["status"] == "evaluating"
    assert d.case["routed_unit"] is None and d.case["reply"]["unit"] == COMMUNITY
    d.do("evaluate", rating="basically_satisfied")
    assert d.case["status"] == "closed"


def test_returned_from_approval(rt):
    d = Driver.start(rt)
    d.to_signing()
    d.do("sign_for", decision="accept", responsible_section="执法一科", responsible_person="李四")
    d.do("handle", result="初步处理", measures="电话沟通")
    d.do("approve", decision="return", return_reason="未现场核实")
    assert d.case["status"] == "handling"
    d.handle_again()
    d.do("evaluate", rating="satisfied")
    assert d.case["status"] == "closed"
    completed = [el for t, el in _events(rt, d.case["case_no"]) if t == "task_completed"]
    assert completed.count("handle") == 2 and completed.count("approve") == 2


def test_dissatisfied_then_rework_then_satisfied(rt):
    d = Driver.start(rt)
    d.to_signing()
    d.handle_and_approve()
    d.do("evaluate", rating="dissatisfied", rating_comment="漏水仍未解决")
    assert d.case["status"] == "reviewing" and d.open["role"] == "supervisor"
    assert d.open["unit"] == "YC-JGZX"
    d.do("review", instructions="督办：三日内现场整改")
    assert d.case["status"] == "handling"
    d.handle_again()
    d.do("evaluate", rating="satisfied")
    assert d.case["status"] == "closed"


def test_rework_cap_hands_the_decision_to_the_supervision_centre(rt):
    cap = rt.tables.time_limits["rework"]["max_reworks"]
    d = Driver.start(rt)
    d.to_signing()
    d.handle_and_approve()
    for _ in range(cap):
        d.do("evaluate", rating="not_implemented")
        d.do("review", instructions="返工")
        d.handle_again()
    d.do("evaluate", rating="dissatisfied")
    assert d.case["status"] == "deciding"
    d.do("decide", ruling="已穷尽化解措施，依法终结")
    assert d.case["status"] == "closed"
    events = cases.case_events(rt, d.case["case_no"])
    assert events[-1]["payload"] == {"end": "end_ruled"}


def test_bad_form_names_every_field_and_changes_nothing(rt):
    d = Driver.start(rt)
    d.to_signing()
    before = cases.get_case(rt, d.case["case_no"])
    n_events = len(cases.case_events(rt, d.case["case_no"]))
    task = d.open
    with pytest.raises(InvalidForm) as err:
        cases.complete_task(rt, task["id"], {"decision": "accept", "responsible_section": 5, "routed_unit": "X"}, "h")
    assert set(err.value.errors) == {"responsible_section", "responsible_person", "routed_unit"}
    with pytest.raises(InvalidForm) as err:
        cases.complete_task(rt, task["id"], ["not", "a", "dict"], "h")
    after = cases.get_case(rt, d.case["case_no"])
    assert after == before
    assert len(cases.case_events(rt, d.case["case_no"])) == n_events


def test_required_if_and_enum(rt):
    d = Driver.start(rt)
    with pytest.raises(InvalidForm) as err:
        d.do("mediate", mediation_result="resolved")
    assert err.value.errors == {"mediation_note": ["is required"]}
    with pytest.raises(InvalidForm) as err:
        d.do("mediate", mediation_result="maybe")
    assert "mediation_result" in err.value.errors


def test_completed_task_cannot_be_completed_again(rt):
    d = Driver.start(rt)
    task = d.open
    d.to_signing()
    with pytest.raises(TaskNotReady):
        cases.complete_task(rt, task["id"], {"mediation_result": "unresolved"}, "x")


def test_intake_is_validated(rt):
    from tests.support import intake

    with pytest.raises(InvalidInput) as err:
        cases.start_case(rt, intake(category="nonsense", channel="pigeon", reporter={"name": ""}), "a")
    assert {"category", "channel", "reporter"} <= set(err.value.errors)
    with rt.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 0


def test_case_numbers_are_sequential_per_year(rt):
    nos = [Driver.start(rt).case["case_no"] for _ in range(3)]
    assert nos == ["2025-000001", "2025-000002", "2025-000003"]


def test_events_never_record_predicted_states(rt):
    d = Driver.start(rt)
    d.happy_path()
    with rt.db.read() as s:
        types = set(s.scalars(select(CaseEvent.type)).all())
    assert types <= {"case_started", "task_ready", "task_completed", "task_cancelled", "service_called",
                     "case_completed", "case_signed"}  # case_signed: what the unit did, not a prediction
