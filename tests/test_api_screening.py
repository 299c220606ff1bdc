"""Screening and the people's log over HTTP: schedules, a unit's finding, log entries, counts, entry -> case."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from timers import TimerService


def test_schedule_round_and_finding(api, rt, clock):
    assert api.post("/api/v1/screening/schedules", "yjp_leader", json={"level": "community"}).status_code == 403
    resp = api.post("/api/v1/screening/schedules", "jgzx_supervisor", json={"level": "nowhere"})
    assert resp.status_code == 422 and set(resp.get_json()["errors"]) == {"level"}
    assert api.post("/api/v1/screening/schedules", "jgzx_supervisor", json={"level": "community"}).status_code == 201
    clock.set(datetime(2025, 3, 4, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(timezone.utc))
    TimerService(rt, "w").run_until_idle()
    tasks = api.get("/api/v1/tasks?unit=XL-XLJD-YJP", "yjp_leader").get_json()["items"]
    task = next(t for t in tasks if t["element"] == "screen")
    resp = api.post(f"/api/v1/screening/tasks/{task['id']}/findings", "yjp_leader",
                    json={"finding": "risk_update", "note": "拆迁户情绪稳定"})
    assert resp.status_code == 201, resp.get_json()
    rounds = api.get("/api/v1/screening/rounds?level=community", "jgzx_supervisor").get_json()
    assert rounds[0]["findings"] == [{"unit": "XL-XLJD-YJP", "finding": "risk_update", "case_no": None,
                                      "note": "拆迁户情绪稳定", "recorded_at": rounds[0]["findings"][0]["recorded_at"]}]


def test_log_entry_counts_and_case(api):
    body = {"grid": "YJP-01", "household": "云集路1号", "topic": "邻里纠纷", "notes": "噪音扰民"}
    resp = api.post("/api/v1/screening/log", "yjp_grid", json=body)
    assert resp.status_code == 201, resp.get_json()
    entry = resp.get_json()
    assert api.post("/api/v1/screening/log", "yjp_grid", json=dict(body, notes="")).status_code == 422
    counts = api.get("/api/v1/screening/log/counts?by=worker", "yjp_grid").get_json()
    assert counts == [{"key": "yjp_grid", "entries": 1, "cases": 0}]
    resp = api.post(f"/api/v1/screening/log/{entry['id']}/case", "yjp_grid", json={
        "category": "urban_management", "reporter": {"name": "李四", "phone": "13900000000"}})
    assert resp.status_code == 201, resp.get_json()
    case_no = resp.get_json()["case"]["case_no"]
    items = api.get(f"/api/v1/screening/log?case_no={case_no}", "yjp_grid").get_json()["items"]
    assert [i["id"] for i in items] == [entry["id"]]
    assert api.post(f"/api/v1/screening/log/{entry['id']}/case", "yjp_grid", json={
        "category": "urban_management", "reporter": {"name": "李四", "phone": "13900000000"}}).status_code == 409
