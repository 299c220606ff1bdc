"""Statistics and the monthly assessment, on hand-built cases whose figures are known.

Every case is driven through the real procedure (SpiffWorkflow, the timer service, the
database) on the test clock; the figures are then computed from what was recorded.
"""
from __future__ import annotations

import io
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from engine.errors import Conflict, Forbidden, InvalidInput
from engine.rules.access import Caller
from engine.services import assessment, reports
from engine.services.statistics import compute_statistics, definitions, month_period, period
from tests.support import Driver
from timers import TimerService

SH = ZoneInfo("Asia/Shanghai")
MARCH = (date(2025, 3, 1), date(2025, 3, 31))
LADDER = ["street_coordinate", "district_coordinate", "city_coordinate", "joint_meeting"]
LEVEL_OF = {"street_coordinate": "street", "district_coordinate": "district_coordination",
            "city_coordinate": "city_coordination", "joint_meeting": "joint_meeting"}
STREET_USER = Caller("xljd_leader", "街道领导", "XL-XLJD", "street", frozenset({"leader"}))
COMMUNITY_USER = Caller("yjp_acceptor", "受理员", "XL-XLJD-YJP", "community", frozenset({"acceptor"}))


def at(y, m, d, h=9, mi=0):
    return datetime(y, m, d, h, mi, tzinfo=SH).astimezone(timezone.utc)


def stats(rt, first=MARCH[0], last=MARCH[1], user=None, **kw):
    return compute_statistics(rt, user, period(rt, first, last), **kw)


def resolved_at_level(rt, element):
    d = Driver.start(rt)
    d.do("mediate", mediation_result="escalate")
    for step in LADDER:
        if step == element:
            d.do(step, decision="resolve", opinion="协调化解")
            break
        d.do(step, decision="escalate", opinion="上报")
    return d.do("evaluate", rating="satisfied")


@pytest.fixture
def rules(rt):
    return assessment.deploy_rules(rt, "tests")


def test_each_figure_on_known_cases(rt, clock):
    Driver.start(rt).happy_path()                                          # department, satisfied
    d = Driver.start(rt)
    d.do("mediate", mediation_result="resolved", mediation_note="当场调解")
    d.do("evaluate", rating="basically_satisfied")                          # community
    d = Driver.start(rt)                                                    # rework: dissatisfied, then satisfied
    d.to_signing()
    d.handle_and_approve()
    d.do("evaluate", rating="dissatisfied", rating_comment="未解决")
    d.do("review", instructions="督办整改")
    d.handle_again()
    d.do("evaluate", rating="satisfied")
    for element in LADDER:
        resolved_at_level(rt, element)
    late = Driver.start(rt)                                                 # handling left to run late
    late.to_signing()
    late.do("sign_for", decision="accept", responsible_section="执法一科", responsible_person="李四")
    clock.set(at(2025, 3, 20))
    TimerService(rt, "t").run_until_idle()

    total = stats(rt)["total"]
    assert total["accepted"] == 8
    assert total["completed"] == 7
    assert (total["completion_rate"], total["completion_rate_numerator"], total["completion_rate_denominator"]) \
        == (0.875, 7, 8)
    assert total["resolved_by_level"] == {"community": 1, "street": 1, "department": 2, "district_coordination": 1,
                                          "city_coordination": 1, "joint_meeting": 1, "supervision": 0}
    assert total["resolved_share_by_level"]["department"] == round(2 / 7, 4)
    assert total["ratings"] == {"satisfied": 6, "basically_satisfied": 1, "dissatisfied": 0, "not_implemented": 0}
    assert (total["satisfaction_rate"], total["satisfaction_rate_numerator"]) == (1.0, 7)
    assert total["reopened"] == 1
    assert total["resolved_within_month_rate_numerator"] == 7
    # sign-for: two on time (happy path, rework case) and the late case's; handling: 3 on time + 1 late
    assert (total["on_time_sign_for_rate_numerator"], total["on_time_sign_for_rate_denominator"]) == (3, 3)
    assert (total["on_time_handling_rate_numerator"], total["on_time_handling_rate_denominator"]) == (3, 4)
    assert total["red_lights"] == 1 and total["yellow_lights"] == 1
    assert total["supervised"] == 1 and total["supervision_closed"] == 0
    assert total["step_days"]["sign_for"]["count"] == 3 and total["step_days"]["sign_for"]["limit_avg"] == 1
    assert sum(total["backlog_by_age"].values()) == 1


def test_rates_are_none_when_nothing_was_counted(rt, clock):
    total = stats(rt)["total"]
    assert total["accepted"] == 0 and total["completion_rate"] is None and total["completion_rate_denominator"] == 0


def test_a_case_spanning_the_month_end_and_the_holiday(rt, clock):
    clock.set(at(2025, 3, 31, 16))
    d = Driver.start(rt)
    d.to_signing()
    clock.set(at(2025, 4, 3, 10))                     # Thursday; Friday 4 April is Qingming, then the weekend
    d.do("sign_for", decision="accept", responsible_section="执法一科", responsible_person="李四")
    clock.set(at(2025, 4, 7, 10))                     # Monday: one working day after the 3rd
    d.handle_again()
    d.do("evaluate", rating="satisfied")
    march, april = stats(rt)["total"], stats(rt, date(2025, 4, 1), date(2025, 4, 30))["total"]
    assert march["accepted"] == 1 and march["completed"] == 0 and march["backlog_by_age"]["0-2"] == 1
    assert april["accepted"] == 0                      # the cohort is March's
    whole = stats(rt, date(2025, 3, 1), date(2025, 4, 30))["total"]
    assert whole["completed"] == 1 and whole["resolved_within_month_rate_numerator"] == 0
    assert whole["step_days"]["handle"]["avg"] == 1   # 3 → 7 April across the holiday: one working day
    assert april["on_time_sign_for_rate_denominator"] == 1 and april["on_time_sign_for_rate"] == 0.0


def test_grouping_rolls_the_organisation_up(rt, clock):
    Driver.start(rt).happy_path()
    Driver.start(rt, community="XL-XLJD-TJY").happy_path()
    groups = {g["key"]: g for g in stats(rt, group_by="unit")["groups"]}
    assert groups["XL-XLJD-YJP"]["accepted"] == 1 and groups["XL-XLJD-TJY"]["accepted"] == 1
    assert groups["XL-XLJD"]["accepted"] == 2 and groups["YC"]["accepted"] == 2
    assert groups["YC-CGJ"]["accepted"] == 2 and groups["YC-CGJ"]["on_time_handling_rate"] == 1.0
    by_category = stats(rt, group_by="category")["groups"]
    assert [(g["key"], g["accepted"]) for g in by_category] == [("urban_management", 2)]
    levels = {g["key"]: g for g in stats(rt, group_by="level")["groups"]}
    assert levels["department"]["accepted"] == 2 and levels["department"]["on_time_handling_rate"] == 1.0
    assert levels["community"]["accepted"] == 0 and levels["community"]["step_days"]["mediate"]["count"] == 2


def test_scope_a_street_sees_its_communities_only(rt, clock):
    Driver.start(rt).happy_path()
    Driver.start(rt, community="XL-XYJD-DXL").happy_path()   # another street's community
    street = stats(rt, user=STREET_USER, group_by="community")
    assert street["total"]["accepted"] == 1
    assert {g["key"] for g in street["groups"]} <= {"XL-XLJD"} | rt.tables.descendants("XL-XLJD")
    assert stats(rt, user=COMMUNITY_USER)["total"]["accepted"] == 1
    with pytest.raises(Forbidden):
        stats(rt, user=STREET_USER, unit="XL-XYJD")
    with pytest.raises(InvalidInput):
        stats(rt, group_by="weather")


def test_every_figure_has_a_definition():
    keys = [d["key"] for d in definitions()]
    for key in ("accepted", "completed", "completion_rate", "resolved_by_level", "satisfaction_rate",
                "on_time_sign_for_rate", "on_time_handling_rate", "red_lights", "supervised"):
        assert key in keys
    assert all(len(d["definition"]) > 20 for d in definitions())


def test_assessment_scores_ranks_and_drill_down(rt, clock, rules):
    Driver.start(rt).happy_path()
    late = Driver.start(rt, category="urban_management")
    late.to_signing()
    late.do("sign_for", decision="accept", responsible_section="执法一科", responsible_person="李四")
    clock.set(at(2025, 3, 20))
    TimerService(rt, "t").run_until_idle()
    result = assessment.monthly_assessment(rt, "2025-03")
    assert result["closed"] is False
    units = {u["unit"]: u for u in result["units"]}
    cgj = units["YC-CGJ"]
    lost = {d["figure"]: d for d in cgj["deductions"] if d["points"]}
    assert lost["on_time_handling_rate"]["points"] == 10.0          # 20 points × (1 − 1/2)
    assert lost["red_lights"]["points"] == 2 and lost["supervised"]["points"] == 1
    assert lost["red_lights"]["cases"] == [late.case["case_no"]]
    assert cgj["score"] == 87.0
    assert cgj["rank"] == cgj["peers"] == sum(1 for u in result["units"] if u["peer_group"] == "department")
    assert units["YC-ZJJ"]["score"] == 100 and units["YC-ZJJ"]["rank"] == 1
    assert {u["peer_group"] for u in result["units"]} == {"department", "street", "community"}


def test_a_closed_month_stays_frozen(rt, clock, rules):
    Driver.start(rt).happy_path()
    with pytest.raises(Conflict):
        assessment.close_month(rt, "2025-03", "tests")            # not over yet
    d = Driver.start(rt)
    d.to_signing()
    clock.set(at(2025, 4, 2))
    closed = assessment.close_month(rt, "2025-03", "tests")
    assert closed["closed"] and closed["statistics"]["completed"] == 1
    d.handle_and_approve()
    d.do("evaluate", rating="dissatisfied", rating_comment="不满意")   # new events after the close
    again = assessment.monthly_assessment(rt, "2025-03")
    assert again["statistics"] == closed["statistics"] and again["sha256"] == closed["sha256"]
    assert assessment.verify_month(rt, "2025-03") == {"month": "2025-03", "hash_ok": True, "reproducible": True,
                                                       "closed_at": closed["closed_at"]}
    with pytest.raises(Conflict):
        assessment.close_month(rt, "2025-03", "tests")


def test_a_past_month_keeps_the_rules_in_force_then(rt, clock, rules, tmp_path):
    import shutil

    from app import create_app, runtime_of

    Driver.start(rt).happy_path()
    clock.set(at(2025, 4, 2))
    before = assessment.monthly_assessment(rt, "2025-03")
    work = tmp_path / "processes"
    shutil.copytree(rt.processes_dir, work)
    text = (work / "assessment.toml").read_text()
    (work / "assessment.toml").write_text(text.replace('effective_from = "2020-01"', 'effective_from = "2025-04"')
                                          .replace("base = 100", "base = 90"))
    app2 = create_app({"SQLALCHEMY_DATABASE_URI": str(rt.db.engine.url.render_as_string(hide_password=False)),
                       "TESTING": True, "PROCESSES_DIR": str(work)})
    rt2 = runtime_of(app2)
    assert assessment.deploy_rules(rt2, "tests")["version"] == rules["version"] + 1
    assert assessment.monthly_assessment(rt2, "2025-03")["rules_version"] == rules["version"]
    assert assessment.monthly_assessment(rt2, "2025-03")["units"] == before["units"]
    april = assessment.monthly_assessment(rt2, "2025-04")
    assert april["rules_version"] == rules["version"] + 1 and april["base"] == 90


def test_bad_rules_are_refused_naming_the_item():
    with pytest.raises(InvalidInput) as exc:
        assessment.parse_rules('effective_from = "2025-13"\nbase = 100\n[peers]\nstreet = ["street"]\n'
                               '[[deductions]]\nfigure = "accepted"\nlabel = "x"\nkind = "rate"\npoints = 1\n')
    problems = " ".join(exc.value.errors["assessment.toml"])
    assert "effective_from" in problems and "#1 (accepted)" in problems and "rate figure" in problems


def test_the_workbook_has_the_cover_the_sheets_and_the_charts(rt, clock, rules):
    Driver.start(rt).happy_path()
    d = Driver.start(rt)
    d.do("mediate", mediation_result="resolved", mediation_note="当场调解")
    d.do("evaluate", rating="satisfied")
    wb = openpyxl.load_workbook(io.BytesIO(reports.monthly_workbook(rt, None, "2025-03")))
    assert wb.sheetnames == ["封面", "按单位", "按类别", "按渠道", "按层级", "按社区", "考核排名", "月度趋势"]
    cover = {wb["封面"].cell(row=r, column=1).value: wb["封面"].cell(row=r, column=2).value for r in range(5, 15)}
    assert cover["受理"] == 2 and cover["办结"] == 2 and cover["办结率"] == 1.0
    assert cover["社区办结"] == 1 and cover["社区办结占办结比"] == 0.5 and cover["满意率"] == 1.0
    assert len(wb["按单位"]._charts) == 1 and len(wb["月度趋势"]._charts) == 1
    assert wb["月度趋势"].cell(row=13, column=1).value == "2025-03"
    ranking = [row for row in wb["考核排名"].iter_rows(min_row=2, values_only=True)]
    assert ("department", 1, "YC-ZJJ") in {r[:3] for r in ranking}


def test_charts_are_self_contained_svg(rt, clock):
    Driver.start(rt).happy_path()
    svg = reports.chart_svg(rt, None, "completion_by_unit", *MARCH)
    assert svg.startswith("<svg") and "宜昌市城市管理局" in svg
    assert 'src="http' not in svg and "href=\"http" not in svg and "<script src" not in svg


def test_month_period_is_local():
    class RT:
        tz = SH

    p = month_period(RT, "2025-02")
    assert p.start == datetime(2025, 2, 1, tzinfo=SH) and p.last_day == date(2025, 2, 28)


def test_the_report_commands(app, rt, clock, tmp_path):
    Driver.start(rt).happy_path()
    runner = app.test_cli_runner()
    assert "v1" in runner.invoke(args=["report", "rules"]).output
    out = tmp_path / "stats.csv"
    result = runner.invoke(args=["report", "stats", "--from", "2025-03-01", "--to", "2025-03-31", "--group-by",
                                 "category", "--csv", str(out)])
    assert result.exit_code == 0, result.output
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("key,name,accepted,completed,completion_rate") and lines[1].startswith(
        "urban_management,urban_management,1,1,1.0")
    result = runner.invoke(args=["report", "stats", "--from", "2025-03-01", "--to", "2025-03-31"])
    assert '"accepted": 1' in result.output
    xlsx = tmp_path / "m.xlsx"
    result = runner.invoke(args=["report", "monthly", "2025-03", "--xlsx", str(xlsx)])
    assert result.exit_code == 0 and "provisional" in result.output and "YC-CGJ" in result.output
    assert openpyxl.load_workbook(xlsx).sheetnames[0] == "封面"
    result = runner.invoke(args=["report", "close", "2025-03"])
    assert result.exit_code == 1 and "not over yet" in result.output and "Traceback" not in result.output
    clock.set(at(2025, 4, 1, 8))
    assert runner.invoke(args=["report", "close", "2025-03"]).exit_code == 0
    assert "already closed" in runner.invoke(args=["report", "close", "2025-03"]).output
    assert "hash ok, reproducible" in runner.invoke(args=["report", "verify", "2025-03"]).output
    result = runner.invoke(args=["report", "monthly", "2025/03"])
    assert result.exit_code == 1 and "expected YYYY-MM" in result.output and "Traceback" not in result.output


def test_the_readme_table_is_the_definitions():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- statistics-definitions -->")[1].split("<!-- /statistics-definitions -->")[0]
    rows = [line for line in block.strip().splitlines()[2:]]
    assert rows == [f"| `{d['key']}` | {d['definition']} |" for d in definitions()]
