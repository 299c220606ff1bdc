"""The statistics and assessment endpoints over HTTP: contract keys, scope, errors, XLSX and SVG."""
from __future__ import annotations

import io

import openpyxl
import pytest

from engine.services.assessment import deploy_rules

MARCH = {"from": "2025-03-01", "to": "2025-03-31"}
CONTRACT = ("accepted", "completed", "completion_rate", "resolved_by_level", "satisfaction_rate",
            "on_time_sign_for_rate", "on_time_handling_rate", "red_lights", "supervised")


@pytest.fixture
def closed_case(api):
    case_no = api.register()["case_no"]
    api.drive(case_no, "mediate", "sign_for", "handle", "approve", "evaluate")
    return case_no


def test_statistics_name_every_contract_figure_per_group_and_total(api, closed_case):
    resp = api.get("/api/v1/statistics", "jgzx_supervisor", query_string={**MARCH, "group_by": "unit"})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    for figures in [body["total"], *body["groups"]]:
        for key in CONTRACT:
            assert key in figures, key
    total = body["total"]
    assert total["accepted"] == 1 and total["completed"] == 1
    assert total["completion_rate"] == 1.0
    assert total["completion_rate_numerator"] == 1 and total["completion_rate_denominator"] == 1
    assert total["resolved_by_level"]["department"] == 1
    assert body["period"]["basis"] == "accepted" and body["period"]["from"] == "2025-03-01"


def test_statistics_scope_and_errors(api, closed_case):
    other = api.get("/api/v1/statistics", "gxl_acceptor", query_string=MARCH).get_json()
    assert other["total"]["accepted"] == 0                         # another community's view
    assert api.get("/api/v1/statistics", "yjp_acceptor", query_string=MARCH).get_json()["total"]["accepted"] == 1
    resp = api.get("/api/v1/statistics", "gxl_acceptor", query_string={**MARCH, "unit": "XL-XLJD-YJP"})
    assert resp.status_code == 403 and resp.get_json()["errors"] == {"unit": ["outside your scope"]}
    resp = api.get("/api/v1/statistics", "jgzx_supervisor", query_string={"from": "2025-03-31", "to": "2025-03-01"})
    assert resp.status_code == 422 and "to" in resp.get_json()["errors"]
    resp = api.get("/api/v1/statistics", "jgzx_supervisor", query_string={**MARCH, "group_by": "weather"})
    assert resp.status_code == 422 and "group_by" in resp.get_json()["errors"]
    assert api.get("/api/v1/statistics", None, query_string=MARCH).status_code == 401
    defs = api.get("/api/v1/statistics/definitions", "yjp_acceptor").get_json()
    assert {d["key"] for d in defs} >= set(CONTRACT)


def test_assessment_json_and_xlsx(app, api, closed_case):
    from app import runtime_of

    deploy_rules(runtime_of(app), "tests")
    body = api.get("/api/v1/assessment/2025-03", "cgj_handler").get_json()
    assert body["month"] == "2025-03" and body["closed"] is False
    assert {u["unit"] for u in body["units"]} >= {"YC-CGJ", "XL-XLJD-YJP", "XL-XLJD"}
    resp = api.get("/api/v1/assessment/2025-03.xlsx", "jgzx_supervisor")
    assert resp.status_code == 200 and resp.mimetype.endswith("spreadsheetml.sheet")
    wb = openpyxl.load_workbook(io.BytesIO(resp.data))
    assert wb["封面"]["B5"].value == 1 and wb["封面"]["A5"].value == "受理"
    assert api.get("/api/v1/assessment/2025-13", "jgzx_supervisor").status_code == 404


def test_charts_as_svg(api, closed_case):
    resp = api.get("/api/v1/statistics/charts/completion_by_unit.svg", "jgzx_supervisor", query_string=MARCH)
    assert resp.status_code == 200 and resp.mimetype == "image/svg+xml" and resp.data.startswith(b"<svg")
    resp = api.get("/api/v1/statistics/charts/trend.svg", "jgzx_supervisor", query_string={"month": "2025-03"})
    assert resp.status_code == 200 and b"2025-03" in resp.data
    assert api.get("/api/v1/statistics/charts/pie.svg", "jgzx_supervisor").status_code == 404
