"""The web console through Flask's test client: sign-in, CSRF, scope, the generated form, the diagram.

The browser tests (tests/test_browser_console.py) drive the same pages in
chromium; these check the HTTP side of each rule on both databases.
"""
from __future__ import annotations

import re

import pytest

from engine.services import cases
from engine.services.signin import set_password
from tests.support import Driver, intake

PASSWORD = "correct horse 1"


def _token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def sign_in(client, username: str, password: str = PASSWORD):
    page = client.get("/console/signin")
    return client.post("/console/signin", data={"username": username, "password": password,
                                                "csrf_token": _token(page.get_data(as_text=True))})


@pytest.fixture
def people(rt, demo):
    for name in ("yjp_acceptor", "tjy_acceptor", "cgj_dispatcher", "cgj_handler", "cgj_leader", "jgzx_supervisor", "designer", "admin",
                 "auditor", "yjp_grid", "zjj_leader"):
        if name in demo:
            set_password(rt, name, PASSWORD)
    return demo


def test_root_leads_to_a_chinese_sign_in_page_with_a_password_form(client):
    answer = client.get("/", follow_redirects=True)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and answer.request.path == "/console/signin"
    assert 'lang="zh-CN"' in html and "登录" in html and 'type="password"' in html
    assert not re.search(r'(src|href)="(https?:)?//', html), "no external asset"


def test_pages_need_a_signed_in_user(client):
    answer = client.get("/console/tasks")
    assert answer.status_code == 302 and "/console/signin" in answer.headers["Location"]


def test_wrong_password_is_refused_and_failures_are_rate_limited(app, client, people):
    app.config["RATELIMIT_FAILED_SIGNIN"] = "3 per minute"
    for _ in range(3):
        assert sign_in(client, "yjp_acceptor", "wrong password").status_code == 401
    refused = sign_in(client, "yjp_acceptor")  # even the right password, once the address is locked out
    assert refused.status_code == 429 and "登录失败次数过多" in refused.get_data(as_text=True)


def test_session_cookie_is_http_only_and_same_site(client, people):
    answer = sign_in(client, "yjp_acceptor")
    assert answer.status_code == 302
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Expires=" in cookie


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(rt, client, people):
    sign_in(client, "yjp_acceptor")
    case = cases.start_case(rt, intake(), "yjp_acceptor")
    answer = client.post(f"/console/cases/{case['case_no']}/comments", data={"body": "没有令牌"})
    assert answer.status_code == 400 and "CSRF" in answer.get_data(as_text=True)
    assert "没有令牌" not in client.get(f"/console/cases/{case['case_no']}").get_data(as_text=True)


def test_the_json_api_keeps_its_bearer_tokens_without_csrf(client, people):
    answer = client.post("/api/v1/cases", json=intake(), headers={"Authorization": f"Bearer {people['yjp_acceptor']}"})
    assert answer.status_code == 201


def test_a_user_of_another_community_gets_not_found(rt, client, people):
    case = cases.start_case(rt, intake(), "yjp_acceptor")
    sign_in(client, "tjy_acceptor")
    answer = client.get(f"/console/cases/{case['case_no']}")
    assert answer.status_code == 404 and "未找到" in answer.get_data(as_text=True)
    task = case["open_tasks"][0]["id"]
    assert client.get(f"/console/tasks/{task}").status_code == 404


def test_the_task_form_comes_from_the_bpmn_and_shows_errors_by_field(rt, client, people):
    d = Driver.start(rt, "yjp_acceptor")
    sign_in(client, "yjp_acceptor")
    task = d.open["id"]
    html = client.get(f"/console/tasks/{task}").get_data(as_text=True)
    assert "调解结果" in html and 'name="mediation_result"' in html and 'value="escalate"' in html
    answer = client.post(f"/console/tasks/{task}/complete", data={"csrf_token": _token(html),
                                                                   "mediation_result": "resolved"})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert re.search(r'class="field-error" data-field="mediation_note">is required', page)
    english = client.get(f"/console/tasks/{task}?lang=en").get_data(as_text=True)
    assert "Mediation result" in english


def test_the_case_page_draws_the_diagram_with_the_path(rt, client, people):
    d = Driver.start(rt, "yjp_acceptor")
    d.to_signing()
    sign_in(client, "yjp_acceptor")
    html = client.get(f"/console/cases/{d.case['case_no']}").get_data(as_text=True)
    assert re.search(r'<g class="bpmn-element userTask[^"]*\bpassed\b[^"]*" data-element="mediate"', html)
    assert re.search(r'<g class="bpmn-element userTask[^"]*\bcurrent\b[^"]*" data-element="sign_for"', html)
    assert not re.search(r'<g class="[^"]*\bpassed\b[^"]*" data-element="approve"', html)


def test_the_path_follows_the_branches_the_case_took(rt):
    from engine.services.diagram import case_diagram

    by_department = Driver.start(rt, "yjp_acceptor")
    by_department.happy_path()
    passed = set(case_diagram(rt, by_department.case["case_no"])["passed"])
    # (in the shared sub-procedures' drawings too: mediate, sign_for, handle, approve, evaluate)
    assert {"mediate", "route_case_task", "sign_for", "handle", "approve", "call_handling",
            "unified_reply_task", "evaluate"} <= passed
    assert "prepare_community_reply" not in passed  # the other branch of the same gateway
    by_community = Driver.start(rt, "yjp_acceptor")
    by_community.do("mediate", mediation_result="resolved", mediation_note="双方达成协议")
    passed = set(case_diagram(rt, by_community.case["case_no"])["passed"])
    assert "prepare_community_reply" in passed and "sign_for" not in passed and "prepare_unit_reply" not in passed


def test_sign_out_ends_the_session(client, people):
    sign_in(client, "yjp_acceptor")
    page = client.get("/console/tasks").get_data(as_text=True)
    client.post("/console/signout", data={"csrf_token": _token(page)})
    assert client.get("/console/tasks").status_code == 302


def test_a_new_password_ends_earlier_sessions(rt, client, people):
    sign_in(client, "yjp_acceptor")
    assert client.get("/console/tasks").status_code == 200
    set_password(rt, "yjp_acceptor", "another password")
    assert client.get("/console/tasks").status_code == 302


def test_flask_users_password_sets_a_password_that_signs_in(app, client, demo):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "password", "cgj_handler"], input="handler pass 9\nhandler pass 9\n")
    assert result.exit_code == 0 and "password set for cgj_handler" in result.output
    assert runner.invoke(args=["users", "password", "cgj_handler", "--password", "short"]).exit_code == 1
    assert runner.invoke(args=["users", "password", "nobody", "--password", "long enough 1"]).exit_code == 1
    assert sign_in(client, "cgj_handler", "handler pass 9").status_code == 302


def test_seed_demo_gives_the_demo_users_the_documented_demo_password(app, client):
    from engine.services.signin import DEMO_PASSWORD

    result = app.test_cli_runner().invoke(args=["seed", "demo"])
    assert result.exit_code == 0 and f"demo password {DEMO_PASSWORD}" in result.output
    assert DEMO_PASSWORD == "demo1234"  # the README's quick start names it
    assert sign_in(client, "jgzx_supervisor", DEMO_PASSWORD).status_code == 302
    assert client.get("/console/supervision").status_code == 200


def test_the_designer_validates_uploads_and_lists_problems_by_element(client, people):
    from io import BytesIO
    from pathlib import Path

    sign_in(client, "designer")
    page = client.get("/console/designer?process=dispute_urban_management").get_data(as_text=True)
    source = (Path(__file__).resolve().parents[1] / "processes" / "unit_handling.bpmn").read_bytes()
    broken = source.replace(b'value="enum:approve|return required"', b'value="enum: required"')
    answer = client.post("/console/designer/validate", content_type="multipart/form-data",
                         data={"csrf_token": _token(page), "file": (BytesIO(broken), "broken.bpmn")})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422 and 'data-element="approve"' in html and "broken.bpmn" in html
    answer = client.post("/console/designer/validate", content_type="multipart/form-data",
                         data={"csrf_token": _token(page), "file": (BytesIO(source), "unit_handling.bpmn")})
    assert answer.status_code == 200 and "校验通过" in answer.get_data(as_text=True)
    refused = client.post("/console/designer/deploy", content_type="multipart/form-data",
                          data={"csrf_token": _token(page), "file": (BytesIO(broken), "broken.bpmn")})
    assert refused.status_code == 422 and 'data-element="approve"' in refused.get_data(as_text=True)


def test_statistics_page_charts_and_the_monthly_workbook(rt, client, people):
    from engine.services.assessment import deploy_rules

    deploy_rules(rt, "tests")
    Driver.start(rt, "yjp_acceptor").happy_path()
    sign_in(client, "cgj_leader")
    html = client.get("/console/statistics").get_data(as_text=True)
    assert "办结率" in html and "/console/charts/trend.svg" in html and 'id="assessment"' in html
    chart = client.get("/console/charts/completion_by_unit.svg")
    assert chart.status_code == 200 and chart.mimetype == "image/svg+xml"
    assert not re.search(rb"<script[^>]*(src|href)=", chart.data), "no script from elsewhere"
    workbook = client.get("/console/assessment/2025-03.xlsx")
    assert workbook.status_code == 200 and workbook.data[:2] == b"PK"


def test_task_lists_filter_by_light(rt, client, people, clock):
    d = Driver.start(rt, "yjp_acceptor")
    d.to_signing()
    sign_in(client, "cgj_dispatcher")
    assert 'data-element="sign_for"' in client.get("/console/tasks?scope=candidate&light=green").get_data(as_text=True)
    assert 'data-element="sign_for"' not in client.get("/console/tasks?scope=candidate&light=red").get_data(
        as_text=True)
    clock.advance(days=3)
    red = client.get("/console/tasks?scope=candidate&light=red").get_data(as_text=True)
    assert 'data-element="sign_for"' in red and "light-red" in red


def test_public_tracking_needs_no_sign_in_and_shows_no_personal_data(rt, client, demo):
    case = cases.start_case(rt, intake(), "yjp_acceptor")
    found = client.get(f"/console/track?code={case['tracking_code']}")
    html = found.get_data(as_text=True)
    assert found.status_code == 200 and case["case_no"] in html and 'id="track-status"' in html
    assert "张三" not in html and "13812345678" not in html and "楼上漏水" not in html
    missing = client.get("/console/track?code=ZZZZZZZZZZZZ")
    assert missing.status_code == 404 and "未找到" in missing.get_data(as_text=True)


def test_the_case_list_shows_only_the_callers_scope(rt, client, people):
    mine = cases.start_case(rt, intake(title="云集路的纠纷"), "yjp_acceptor")
    other = cases.start_case(rt, intake(title="铁路坝的纠纷", community="XL-XLJD-TJY",
                                        location={"address": "铁路坝1号"}), "tjy_acceptor")
    sign_in(client, "yjp_acceptor")
    html = client.get("/console/cases").get_data(as_text=True)
    assert f'data-case="{mine["case_no"]}"' in html and f'data-case="{other["case_no"]}"' not in html
    found = client.get("/console/cases?q=云集路").get_data(as_text=True)
    assert f'data-case="{mine["case_no"]}"' in found


def test_the_consolidation_page_shows_the_co_handlers_results_and_the_list_and_date_fields(rt, client, people):
    d = Driver.start(rt, "yjp_acceptor")
    d.to_signing()
    d.do("sign_for", decision="accept", responsible_section="执法一科", responsible_person="cgj_handler")
    sign_in(client, "cgj_handler")
    html = client.get(f"/console/tasks/{d.open['id']}").get_data(as_text=True)
    assert 'id="f-co_units"' in html and "多个用逗号分隔" in html
    answer = client.post(f"/console/tasks/{d.open['id']}/complete", data={
        "csrf_token": _token(html), "result": "联合处置", "measures": "会同环保", "co_units": "YC-HBJ"})
    assert answer.status_code in (200, 302), answer.get_data(as_text=True)
    d.case = cases.get_case(rt, d.case["case_no"])
    assert (d.open["element"], d.open["unit"]) == ("co_sign_for", "YC-HBJ")
    d.do("co_sign_for", decision="accept", responsible_section="监察科", responsible_person="hbj_handler")
    d.do("co_handle", co_opinion="已对排污口取样")
    html = client.get(f"/console/tasks/{d.open['id']}").get_data(as_text=True)
    assert d.open["element"] == "consolidate" and 'data-shown="co_results"' in html
    assert "已对排污口取样" in html and "YC-HBJ" in html


def test_the_log_entry_becomes_a_case_and_the_screening_and_mediation_pages(rt, client, people):
    sign_in(client, "yjp_grid")
    page_html = client.get("/console/log").get_data(as_text=True)
    assert 'id="log-form"' in page_html and "民情日志" in page_html
    refused = client.post("/console/log", data={"csrf_token": _token(page_html), "grid": "YJP-01", "household": "",
                                                "topic": "邻里", "notes": "楼道堆物"})
    assert refused.status_code == 422 and 'data-field="household"' in refused.get_data(as_text=True)
    done = client.post("/console/log", data={"csrf_token": _token(page_html), "grid": "YJP-01",
                                             "household": "云集路12号3单元", "topic": "邻里", "notes": "楼道堆物引发争执"})
    assert done.status_code == 302
    page_html = client.get("/console/log?grid=YJP-01").get_data(as_text=True)
    entry = re.search(r'data-entry="(\d+)"', page_html).group(1)
    assert "云集路12号3单元" in page_html and 'data-grid="YJP-01"' in page_html
    made = client.post(f"/console/log/{entry}/case", data={"csrf_token": _token(page_html), "category": "neighbour",
                                                            "reporter_name": "王五", "reporter_phone": "13812340000"})
    assert made.status_code == 302 and "/console/cases/" in made.headers["Location"]
    case_html = client.get(made.headers["Location"]).get_data(as_text=True)
    assert "民情日志" in case_html
    assert 'id="rounds"' in client.get("/console/screening").get_data(as_text=True)
    client.post("/console/signout", data={"csrf_token": _token(case_html)})

    sign_in(client, "cgj_handler")
    form_html = client.get("/console/mediation").get_data(as_text=True)
    assert 'value="XL-XLJD-TWH"' in form_html
    bad = client.post("/console/mediation", data={"csrf_token": _token(form_html), "mediation_body": "YC-CGJ",
                                                  "title": "t", "description": "d", "category": "neighbour",
                                                  "community": "XL-XLJD-YJP"})
    assert bad.status_code == 422 and 'data-field="mediation_body"' in bad.get_data(as_text=True)
    handed = client.post("/console/mediation", data={"csrf_token": _token(form_html), "mediation_body": "XL-XLJD-TWH",
                                                     "title": "邻里漏水纠纷", "description": "移交人民调解",
                                                     "category": "neighbour", "community": "XL-XLJD-YJP"})
    assert handed.status_code == 302 and "/console/cases/" in handed.headers["Location"]


def test_the_assessment_gate_on_the_case_page_refuses_an_unfinished_assessment(rt, client, people):
    from engine.services import stability

    case = stability.start_assessment(rt, {
        "title": "云集路棚户区改造", "description": "拆迁安置 320 户", "project_kind": "demolition",
        "community": "XL-XLJD-YJP", "owner_unit": "YC-ZJJ",
        "assessor": {"name": "湖北某工程咨询有限公司", "credit_code": "91420500MA4XXXXX0"}}, "zjj_handler")
    sign_in(client, "zjj_leader")
    html = client.get(f"/console/cases/{case['case_no']}").get_data(as_text=True)
    assert 'id="project-approval"' in html
    refused = client.post(f"/console/assessments/{case['case_no']}/approval", data={"csrf_token": _token(html)})
    body = refused.get_data(as_text=True)
    assert refused.status_code == 422 and 'data-field="assessment"' in body and "not finished" in body
    assert stability.assessment_view(rt, case["case_no"])["approved"] is False
