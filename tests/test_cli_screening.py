"""`flask screening`: start the schedules (idempotent), list rounds, read the people's log and its counts."""
from __future__ import annotations

import json

from engine.services import people_log


def test_start_rounds_and_log(app, rt, clock):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["screening", "start"])
    assert result.exit_code == 0, result.output
    assert [line.split(":")[0] for line in result.output.splitlines()] == ["community", "street", "city"]
    assert "already running" in runner.invoke(args=["screening", "start", "street"]).output
    bad = runner.invoke(args=["screening", "start", "province"])
    assert bad.exit_code != 0 and "level" in bad.output
    assert runner.invoke(args=["screening", "rounds"]).output.strip() == ""
    people_log.record_entry(rt, {"grid": "YJP-01", "household": "1号", "topic": "邻里纠纷", "notes": "噪音",
                                 "community": "XL-XLJD-YJP"}, "yjp_grid")
    rows = [json.loads(x) for x in runner.invoke(args=["screening", "log", "--counts", "grid"]).output.splitlines()]
    assert rows == [{"grid": "YJP-01", "entries": 1, "cases": 0}]
    listed = runner.invoke(args=["screening", "log", "--worker", "yjp_grid"]).output.splitlines()
    assert json.loads(listed[0])["household"] == "1号"
    assert runner.invoke(args=["screening", "log", "--worker", "nobody"]).output.strip() == "no entries"
