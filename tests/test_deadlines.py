"""Deadlines, red lights and the escalation ladder, by travelling in time with one clock."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from engine.errors import CaseError
from engine.rules.access import Caller
from engine.services import cases
from engine.services.supervision import close_supervision, list_supervisions, note_supervision
from engine.store.models import CaseEvent, Outbox
from engine.store.timer_models import CaseTimer
from tests.support import Driver
from timers import TimerService

SH = ZoneInfo("Asia/Shanghai")
T0_LOCAL = datetime(2025, 3, 3, 9, 0, tzinfo=SH)


def local(y, m, d, h=17, mi=30):
    return datetime(y, m, d, h, mi, tzinfo=SH).astimezone(timezone.utc)


SUPERVISOR = Caller("jgzx_supervisor", "监管员", "YC-JGZX", "supervision_centre", frozenset({"supervisor"}))


def open_records(rt):
    return list_supervisions(rt, SUPERVISOR)["items"]


def run_timers(rt):
    return TimerService(rt, "test-worker").run_until_idle()


def fired(rt, case_no):
    return [(e["element"], e["payload"]["kind"]) for e in cases.case_events(rt, case_no)
            if e["type"] == "timer_fired"]


def test_every_step_gets_its_working_day_deadline(rt, clock):
    # T0 is Monday 2025-03-03 09:00 in Shanghai.
    d = Driver.start(rt)
    assert d.open["due_at"] == local(2025, 3, 6).isoformat()   # mediation: 3 working days
    assert d.open["warn_at"] == local(2025, 3, 5).isoformat()  # 1 working day before
    d.to_signing()
    assert d.open["due_at"] == local(2025, 3, 4).isoformat()   # sign-for: 1 working day
    d.do("sign_for", decision="accept", responsible_section="执法一科", responsible_person="李四")
    assert d.open["due_at"] == local(2025, 3, 14).isoformat()  # routine handling: 9 working days
    d.do("handle", result="已修复", measures="约谈")
    assert d.open["due_at"] == local(2025, 3, 4).isoformat()   # approval: 1
    d.do("approve", decision="approve")
    assert d.open["due_at"] == local(2025, 3, 6).isoformat()   # evaluation: 3
    with rt.db.read() as s:
        assert {t.kind for t in s.scalars(select(CaseTimer))} == {"warn", "due"}
    d.do("evaluate", rating="dissatisfied")
    assert d.open["due_at"] == local(2025, 3, 6).isoformat()   # supervision review: 3
    d.do("review", instructions="返工")
    assert d.open["due_at"] == local(2025, 3, 14).isoformat()  # handling again: a fresh 9 days
    d.handle_again()
    d.do("evaluate", rating="satisfied")
    with rt.db.read() as s:
        assert s.scalars(select(CaseTimer)).all() == []  # a closed case waits for nothing


def test_yellow_then_red_then_supervision(rt, clock):
    d = Driver.start(rt)
    d.to_signing()  # sign-for due Tue 2025-03-04 17:30, warn Mon 17:30
    clock.set(local(2025, 3, 3, 18, 0))
    run_timers(rt)
    assert fired(rt, d.case["case_no"]) == [("warn_sign_for", "warn")]
    case = cases.get_case(rt, d.case["case_no"])
    assert case["open_tasks"][0]["element"] == "sign_for"
    with rt.db.read() as s:
        texts = [o.message for o in s.scalars(select(Outbox))]
    assert any("黄灯预警" in t for t in texts)
    assert open_records(rt) == []

    clock.set(local(2025, 3, 5, 9, 0))
    run_timers(rt)
    assert fired(rt, d.case["case_no"])[-1] == ("due_sign_for", "due")
    records = open_records(rt)
    assert len(records) == 1
    rec = records[0]
    assert rec["step"] == "sign_for" and rec["unit"] == "YC-CGJ" and rec["status"] == "open"
    assert rec["case_no"] == d.case["case_no"] and rec["late_hours"] == pytest.approx(15.5)
    with rt.db.read() as s:
        assert any("红灯督办" in o.message for o in s.scalars(select(Outbox)))

    note_supervision(rt, SUPERVISOR, rec["id"], "已电话督促城管局")
    with pytest.raises(CaseError):
        close_supervision(rt, SUPERVISOR, rec["id"])  # the step is not done yet
    d.do("sign_for", decision="accept", responsible_section="执法一科", responsible_person="李四")
    closed = close_supervision(rt, SUPERVISOR, rec["id"], "已签收")
    assert closed["status"] == "closed" and "已电话督促" in closed["note"]
    assert open_records(rt) == []


def test_a_case_left_alone_climbs_the_ladder_to_the_joint_meeting(rt, clock):
    d = Driver.start(rt)
    levels = []
    for _ in range(12):
        case = cases.get_case(rt, d.case["case_no"])
        levels.append((case["level"], case["open_tasks"][0]["element"] if case["open_tasks"] else None))
        if case["level"] == "joint_meeting":
            break
        due = datetime.fromisoformat(case["open_tasks"][0]["due_at"])
        clock.set(due + timedelta(minutes=1))
        run_timers(rt)
    assert [lv for lv, _ in levels] == ["community", "street", "district_coordination", "city_coordination",
                                        "joint_meeting"]
    case = cases.get_case(rt, d.case["case_no"])
    assert case["status"] == "escalated" and case["open_tasks"][0]["unit"] == "YC-LXHY"
    for e in cases.case_events(rt, d.case["case_no"]):
        if e["type"] == "timer_fired":
            due = datetime.fromisoformat(e["payload"]["due_at"]).astimezone(SH)
            assert rt.calendar.is_working_day(due.date()), e


def test_a_level_assigns_the_case_back_to_a_unit_with_a_fresh_deadline(rt, clock):
    d = Driver.start(rt)
    d.do("mediate", mediation_result="escalate")
    assert d.case["level"] == "street" and d.open["unit"] == "XL-XLJD"
    with pytest.raises(CaseError) as err:
        d.do("street_coordinate", decision="assign", opinion="交住建局", assign_unit="NOPE")
    assert "assign_unit" in err.value.errors
    clock.advance(days=1)
    d.do("street_coordinate", decision="assign", opinion="交住建局", assign_unit="YC-ZJJ")
    assert d.case["status"] == "signing" and d.open["unit"] == "YC-ZJJ"
    assert d.open["due_at"] == local(2025, 3, 5).isoformat()


def test_completing_a_step_cancels_its_timers(rt, clock):
    d = Driver.start(rt)
    d.to_signing()
    d.do("sign_for", decision="accept", responsible_section="s", responsible_person="p")
    clock.set(local(2025, 4, 30))
    d.case = cases.get_case(rt, d.case["case_no"])
    # handle is overdue but not yet fired: the unit completes it first, so no timer fires.
    d.do("handle", result="r", measures="m")
    with rt.db.read() as s:
        elements = {t.element for t in s.scalars(select(CaseTimer))}
    assert not any("handle" in e for e in elements)


def test_timers_that_came_due_while_stopped_fire_in_due_order(rt, clock):
    # Created in the reverse order of their deadlines, so due order is not creation order.
    for days in (2, 1, 0):
        clock.set(T0_LOCAL + timedelta(days=days))
        Driver.start(rt)
    clock.set(local(2025, 3, 20))
    run_timers(rt)
    with rt.db.read() as s:
        rows = s.execute(select(CaseEvent.case_id, CaseEvent.payload).where(CaseEvent.type == "timer_fired")
                         .order_by(CaseEvent.id)).all()
    assert len(rows) >= 6
    earliest, order = {}, []
    for case_id, payload in rows:
        due = datetime.fromisoformat(payload["due_at"])
        if case_id not in earliest:
            order.append(case_id)
        earliest[case_id] = min(due, earliest.get(case_id, due))
    # The cases were taken in the order their timers fell due (a case fires all its due timers at once).
    assert [earliest[c] for c in order] == sorted(earliest[c] for c in order)
    assert order == sorted(order, reverse=True)
    with rt.db.read() as s:
        assert all(t.due_at > clock.now() for t in s.scalars(select(CaseTimer)))


def test_a_timer_racing_a_completion_exactly_one_wins(rt, clock):
    outcomes = []
    for _ in range(10):
        d = Driver.start(rt)
        d.to_signing()
        d.do("sign_for", decision="accept", responsible_section="s", responsible_person="p")
        task = d.open
        clock.set(datetime.fromisoformat(task["due_at"]) + timedelta(minutes=1))
        with rt.db.read() as s:
            due_timer = s.scalar(select(CaseTimer.id).where(CaseTimer.element == "due_handle"))
        barrier = threading.Barrier(2)
        result = {}

        def complete():
            barrier.wait()
            try:
                cases.complete_task(rt, task["id"], {"result": "r", "measures": "m"}, "handler")
                result["user"] = "ok"
            except CaseError as exc:
                result["user"] = exc.code

        def fire():
            barrier.wait()
            result["timer"] = cases.fire_timer(rt, due_timer, "w")

        threads = [threading.Thread(target=complete), threading.Thread(target=fire)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        assert (result["user"], result["timer"]) in {("ok", "gone"), ("task_not_ready", "fired"),
                                                     ("ok", "busy")}, result
        events = [e["type"] for e in cases.case_events(rt, d.case["case_no"])]
        if result["user"] == "ok":
            assert events.count("task_completed") == 3  # mediate, sign_for, handle
            assert "task_cancelled" not in events
        else:
            assert "task_cancelled" in events
        outcomes.append(tuple(result.values()))
        clock.set(clock.now() + timedelta(days=30))
