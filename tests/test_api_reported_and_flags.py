"""When a dispute was reported (`reported_at` at intake), and a case's deadline flags derived from its open tasks."""
from __future__ import annotations

from datetime import datetime, timedelta

from engine.services.audit import verify_cases
from tests.api_support import intake_body
from tests.conftest import T0


def test_a_paper_record_keeps_when_it_was_reported(api, rt):
    case = api.register(reported_at="2025-02-20T09:15:00+08:00")
    assert datetime.fromisoformat(case["reported_at"]) == datetime.fromisoformat("2025-02-20T01:15:00+00:00")
    assert datetime.fromisoformat(case["created_at"]) == T0
    shown = api.case(case["case_no"])
    assert shown["reported_at"] == case["reported_at"]
    listed = api.get("/api/v1/cases", "jgzx_supervisor").get_json()["items"]
    assert [c["reported_at"] for c in listed] == [case["reported_at"]]
    # the intake recorded in the event log carries it too, and the case still verifies
    events = api.get(f"/api/v1/cases/{case['case_no']}/events", "auditor").get_json()
    assert datetime.fromisoformat(events[0]["payload"]["intake"]["reported_at"]) == \
        datetime.fromisoformat(case["reported_at"])
    assert verify_cases(rt, [case["case_no"]]) == {"checked": 1, "failed": 0, "results": []}


def test_reported_at_defaults_to_the_intake_instant(api):
    case = api.register()
    assert case["reported_at"] == case["created_at"]


def test_a_bad_reported_at_is_a_422_naming_it_and_registers_nothing(api, clock):
    for value, problem in [((T0 + timedelta(minutes=1)).isoformat(), "future"),
                           ("1999-12-31T23:59:00+00:00", "2000-01-01"),
                           ("2025-02-20T09:15:00", "offset"),
                           ("yesterday", "iso 8601"), (20250220, "iso 8601")]:
        resp = api.post("/api/v1/cases", "yjp_acceptor", intake_body(reported_at=value))
        assert resp.status_code == 422, (value, resp.get_json())
        body = resp.get_json()
        assert list(body["errors"]) == ["reported_at"], body
        assert problem in " ".join(body["errors"]["reported_at"]).lower(), body
    assert api.get("/api/v1/cases", "jgzx_supervisor").get_json()["total"] == 0
    # exactly now is not the future
    assert api.register(reported_at=T0.isoformat())["reported_at"] == T0.isoformat()


def test_the_case_list_filters_by_when_cases_were_reported(api):
    old = api.register(reported_at="2024-06-01T10:00:00+08:00")["case_no"]
    mid = api.register(reported_at="2025-01-15T10:00:00+08:00")["case_no"]
    new = api.register()["case_no"]

    def listed(query):
        resp = api.get(f"/api/v1/cases?{query}", "jgzx_supervisor")
        assert resp.status_code == 200, resp.get_json()
        return sorted(c["case_no"] for c in resp.get_json()["items"])

    assert listed("reported_from=2025-01-01T00:00:00%2B08:00") == sorted([mid, new])
    assert listed("reported_to=2025-01-01T00:00:00%2B08:00") == [old]
    # without an offset, the application's time zone; the upper bound is exclusive
    assert listed("reported_from=2024-06-01T10:00:00&reported_to=2025-01-15T10:00:00") == [old]
    assert api.get("/api/v1/cases?reported_from=soon", "jgzx_supervisor").status_code == 422


def test_a_case_is_overdue_exactly_when_an_open_task_is(api, clock):
    case_no = api.register()["case_no"]
    api.step(case_no, "mediate")
    task = api.open_task(case_no)
    clock.set(datetime.fromisoformat(task["due_at"]) + timedelta(minutes=5))

    case = api.case(case_no)
    assert case["open_tasks"][0]["light"] == "red"
    assert (case["overdue"], case["light"], case["due_at"]) == (True, "red", task["due_at"])
    listed = api.get("/api/v1/cases", "jgzx_supervisor").get_json()["items"][0]
    assert (listed["overdue"], listed["light"], listed["due_at"]) == (True, "red", task["due_at"])
    assert [c["case_no"] for c in api.get("/api/v1/cases?overdue=true", "jgzx_supervisor").get_json()["items"]] \
        == [case_no]
    # the task pages' case summary: it said `overdue: null` beside the task's `overdue: true`
    tasks = api.get(f"/api/v1/tasks?case={case_no}", "cgj_handler").get_json()["items"]
    assert tasks[0]["overdue"] is True and tasks[0]["case"]["overdue"] is True
    assert tasks[0]["case"]["light"] == "red" and tasks[0]["case"]["due_at"] == task["due_at"]
    detail = api.get(f"/api/v1/tasks/{task['id']}", "cgj_handler").get_json()
    assert detail["overdue"] is True and detail["case"]["overdue"] is True


def test_a_case_on_time_is_not_overdue_and_its_flags_follow_the_open_task(api, clock):
    case_no = api.register()["case_no"]
    task = api.open_task(case_no)
    for case in (api.case(case_no), api.get("/api/v1/cases", "jgzx_supervisor").get_json()["items"][0],
                 api.get(f"/api/v1/tasks/{task['id']}", "yjp_acceptor").get_json()["case"]):
        assert case["overdue"] is False and case["light"] == task["light"] == "green"
        assert case["due_at"] == task["due_at"] and case["warn_at"] == task["warn_at"]
    api.step(case_no, "mediate")  # the next step's clock is the case's clock now
    assert api.case(case_no)["due_at"] == api.open_task(case_no)["due_at"] != task["due_at"]
