"""Periodic screening (矛盾排查): a week of rounds through the timer service with a restart and a downtime in
the middle (each period's round exactly once, the missed period caught up once), findings becoming cases,
missed rounds going red, replay and audit verify of the schedules."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from engine.rules.screening import load_screening
from engine.services import audit, cases, screening
from engine.store.models import Case, CaseTask
from engine.store.procedure_models import ScreeningPeriod
from engine.store.timer_models import Supervision
from tests.conftest import ROOT
from tests.support import intake
from timers import TimerService

SH = ZoneInfo("Asia/Shanghai")


def local(y, m, d, h=9, mi=0):
    return datetime(y, m, d, h, mi, tzinfo=SH).astimezone(timezone.utc)


def periods(rt):
    with rt.db.read() as s:
        return sorted((p.level, p.period_start.isoformat()) for p in s.scalars(select(ScreeningPeriod)))


def open_screen_tasks(rt):
    with rt.db.read() as s:
        return s.execute(select(CaseTask.id, CaseTask.unit_code).where(CaseTask.bpmn_id == "screen",
                                                                        CaseTask.state == "ready")).all()


def test_default_schedule_is_pingdus():
    schedule = load_screening(ROOT / "processes")
    assert {k: v.every for k, v in schedule.levels.items()} == {"community": "day", "street": "week",
                                                                "city": "fortnight"}
    from datetime import date
    assert schedule.period_start("street", date(2025, 3, 6)) == date(2025, 3, 3)
    assert schedule.period_start("city", date(2025, 3, 20)) == date(2025, 3, 17)


def test_a_week_of_rounds_with_a_restart_and_a_downtime(rt, clock):
    for level in ("community", "street", "city"):
        assert screening.start_schedule(rt, level)["started"] is True
    assert screening.start_schedule(rt, "community")["started"] is False  # one schedule per level
    communities = len(rt.tables.org.communities())
    first = TimerService(rt, "worker-a")
    for day in (4, 5, 6):  # Tue, Wed, Thu: the 08:30 cycle fires once a day
        clock.set(local(2025, 3, day, 9, 0))
        first.run_until_idle()
        first.run_until_idle()  # a second pass in the same period opens nothing
    assert periods(rt) == [("city", "2025-03-03"), ("community", "2025-03-04"), ("community", "2025-03-05"),
                           ("community", "2025-03-06"), ("street", "2025-03-03")]
    # A restart (a new worker), then a downtime over Friday and the weekend: on Monday the overdue cycle
    # fires for each missed day, but only the current period opens, once.
    second = TimerService(rt, "worker-b")
    second.run_until_idle()
    clock.set(local(2025, 3, 10, 9, 0))
    second.run_until_idle()
    TimerService(rt, "worker-c").run_until_idle()
    assert periods(rt) == [("city", "2025-03-03"), ("community", "2025-03-04"), ("community", "2025-03-05"),
                           ("community", "2025-03-06"), ("community", "2025-03-10"), ("street", "2025-03-03"),
                           ("street", "2025-03-10")]
    streets = len(screening.list_rounds(rt, "street")[0]["units"])
    assert len(open_screen_tasks(rt)) == 4 * communities + 2 * streets + 1
    # Rounds nobody answered are red and supervised, for each unit.
    with rt.db.read() as s:
        red = s.scalar(select(func.count()).select_from(Supervision).where(Supervision.step == "screen"))
    assert red >= 3 * communities  # Tue, Wed and Thu's community rounds are past due by Monday
    for case_no in [c for c, in _schedule_cases(rt)]:
        assert audit.verify_cases(rt, [case_no]) == {"checked": 1, "failed": 0, "results": []}


def _schedule_cases(rt):
    with rt.db.read() as s:
        return s.execute(select(Case.case_no).where(Case.category == "screening")).all()


def test_findings_nothing_new_and_a_new_case_linked_to_the_round(rt, clock):
    screening.start_schedule(rt, "community")
    clock.set(local(2025, 3, 4, 9, 0))
    TimerService(rt, "worker").run_until_idle()
    tasks = open_screen_tasks(rt)
    yjp = next(t for t in tasks if t.unit_code == "XL-XLJD-YJP")
    other = next(t for t in tasks if t.unit_code != "XL-XLJD-YJP")
    out = screening.report_finding(rt, yjp.id, {"finding": "new_case", "intake": intake(title="排查发现：租户纠纷")},
                                   "yjp_leader")
    new = cases.get_case(rt, out["case_no"])
    assert new["channel"] == "screening" and new["title"] == "排查发现：租户纠纷"
    screening.report_finding(rt, other.id, {"finding": "nothing_new"}, "someone")
    rounds = screening.list_rounds(rt, "community")
    assert [(f["unit"], f["finding"], f["case_no"]) for f in rounds[0]["findings"]] == [
        ("XL-XLJD-YJP", "new_case", out["case_no"]), (other.unit_code, "nothing_new", None)]
    assert len(open_screen_tasks(rt)) == len(tasks) - 2
    [(schedule_no,)] = _schedule_cases(rt)
    assert audit.verify_cases(rt, [schedule_no])["failed"] == 0


def test_the_demo_has_its_schedules_and_an_assessment(rt, demo, clock):
    from engine.services.demo_procedures import seed_demo_procedures

    first = seed_demo_procedures(rt)
    assert first["schedules_started"] == ["community", "street", "city"] and first["assessment"]
    assert seed_demo_procedures(rt) == {"schedules_started": [], "assessment": None}
