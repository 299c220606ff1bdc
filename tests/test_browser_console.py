"""The web console in a real browser: Debian's chromium, driven by Playwright, against a real HTTP server.

One case from intake to rating, each step by the person whose step it is,
through the pages and the forms generated from the BPMN; the supervision
board after the clock moves past a deadline; the diagram's path; scope and
CSRF refusals; a screenshot of every page (tests/output/<test>/, listed by
`names` and printed). Runs on every database of TEST_DATABASES.
"""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from engine.services.signin import set_password
from tests.browser_support import PASSWORD, LiveServer, Person, Shots, chromium_path
from timers import TimerService

playwright_api = pytest.importorskip("playwright.sync_api")

PEOPLE = ("yjp_acceptor", "tjy_acceptor", "cgj_dispatcher", "cgj_handler", "cgj_leader", "jgzx_supervisor",
          "auditor", "designer", "admin", "yjp_grid", "hbj_handler")
SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def browser():
    path = chromium_path()
    if path is None:  # .ci/run installs it; a missing browser is a failure, never a skip
        pytest.fail("chromium not found: apt-get install -y chromium (or set CHROMIUM=/path/to/chromium)")
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


@pytest.fixture
def server(app, rt, demo):
    from engine.services.assessment import deploy_rules

    for name in PEOPLE:
        set_password(rt, name, PASSWORD)
    deploy_rules(rt, "tests")
    with LiveServer(app) as live:
        yield live


@pytest.fixture
def shots(request, tmp_path):
    taken = Shots(request.node.name, tmp_path)
    yield taken
    print(f"\nscreenshots in {taken.folder}: {', '.join(taken.names)}")


def classes_of(page, element: str) -> set[str]:
    return set((page.get_attribute(f'svg.bpmn-diagram g[data-element="{element}"]', "class") or "").split())


def register_case(acceptor: Person, shots=None, title="楼上漏水纠纷") -> str:
    page = acceptor.page
    acceptor.go("/console/intake")
    page.fill("#i-title", title)
    page.fill("#i-description", "居民反映楼上住户装修导致漏水，协商未果。")
    page.select_option("#i-category", "urban_management")
    page.select_option("#i-channel", "walk_in")
    page.fill("#i-reporter_name", "张三")
    page.fill("#i-reporter_phone", "13812345678")
    page.fill("#i-address", "西陵区云集路12号")
    page.fill("#i-grid", "YJP-03")
    if shots:
        shots(page, "intake")
    page.click("#register")
    page.wait_for_selector("#tracking-code")
    if shots:
        shots(page, "registered")
    return page.text_content("#case-link").strip()


def complete(person: Person, values: dict, leave_out: tuple = ()) -> None:
    person.fill_form(values, leave_out)
    person.page.click("#complete")
    person.page.wait_for_load_state()


def test_a_case_from_intake_to_rating_through_the_pages(server, browser, shots):
    acceptor = Person(browser, server, "yjp_acceptor")
    shots(acceptor.page, "tasks-acceptor")
    case_no = register_case(acceptor, shots)
    tracking_code = acceptor.page.text_content("#tracking-code").strip()

    acceptor.open_task("mediate", case_no)
    assert "调解结果" in acceptor.page.text_content("#task-form")  # the label from the BPMN, not the field name
    complete(acceptor, {"mediation_result": "unresolved"})
    assert f"/console/cases/{case_no}" in acceptor.page.url

    dispatcher = Person(browser, server, "cgj_dispatcher")
    dispatcher.go(f"/console/tasks?scope=candidate&case={case_no}")
    assert dispatcher.page.is_visible('tr[data-element="sign_for"]')
    shots(dispatcher.page, "candidate-tasks")
    dispatcher.open_task("sign_for", case_no)
    dispatcher.page.fill("#delegate-username", "cgj_handler")
    dispatcher.page.click("#delegate")
    dispatcher.page.wait_for_load_state()
    assert dispatcher.page.text_content("#assignee").strip() == "cgj_handler"

    handler = Person(browser, server, "cgj_handler")
    handler.go("/console/tasks?scope=mine")
    assert handler.page.is_visible('tr[data-element="sign_for"]')
    shots(handler.page, "my-tasks")
    handler.open_task("sign_for", case_no, scope="mine")
    shots(handler.page, "task-sign-for")
    complete(handler, {"decision": "accept", "responsible_section": "执法一科"}, leave_out=("responsible_person",))
    error = handler.page.wait_for_selector('.field-error[data-field="responsible_person"]')
    assert "required" in error.text_content()
    assert handler.page.is_visible("#form-error")
    shots(handler.page, "task-field-error")
    complete(handler, {"decision": "accept", "responsible_section": "执法一科", "responsible_person": "cgj_handler"})
    assert f"/console/cases/{case_no}" in handler.page.url
    handler.open_task("handle", case_no)
    complete(handler, {"result": "已责令整改，漏水已修复", "measures": "现场查看，约谈双方"})

    leader = Person(browser, server, "cgj_leader")
    leader.open_task("approve", case_no)
    shots(leader.page, "task-approve")
    complete(leader, {"decision": "approve"})

    acceptor.open_task("evaluate", case_no)
    complete(acceptor, {"rating": "satisfied"})
    page = acceptor.page
    assert f"/console/cases/{case_no}" in page.url
    page.wait_for_selector("svg.bpmn-diagram")
    for element in ("mediate", "sign_for", "handle", "approve", "evaluate"):
        assert "passed" in classes_of(page, element), element
    assert "passed" in classes_of(page, "flow_route_case_task_to_call_sign_for")
    assert "passed" in classes_of(page, "call_handling")  # the shared sub-procedure it called, drawn below
    assert "passed" not in classes_of(page, "street_coordinate")  # the ladder was never climbed
    assert page.query_selector_all("svg.bpmn-diagram g.current") == []
    assert page.is_visible("#case-rating")
    shots(page, "case-done")

    page.goto(server.url + "/console/signin")  # signed in: the sign-in page leads on
    citizen = browser.new_context()
    public = citizen.new_page()
    public.goto(server.url + "/console/track")
    public.fill("#code", tracking_code)
    public.click("#look-up")
    public.wait_for_selector("#track-result")
    text = public.text_content("main")
    assert case_no in text and "张三" not in text and "13812345678" not in text
    shots(public, "track")
    citizen.close()

    auditor = Person(browser, server, "auditor")
    auditor.go(f"/console/audit?case={case_no}")
    assert "consistent" in auditor.page.text_content("#verdict")
    auditor.go(f"/console/audit?case={case_no}&until=3")
    shots(auditor.page, "audit-replay")

    english = Person(browser, server, "cgj_leader")
    english.go("/console/statistics?lang=en")
    assert english.page.is_visible("img.chart") and "Statistics" in english.page.text_content("h1")
    shots(english.page, "statistics-en")
    for person in (acceptor, dispatcher, handler, leader, auditor, english):
        person.close()


def test_supervision_board_shows_a_red_step_after_the_clock_moves(server, browser, shots, rt, clock):
    acceptor = Person(browser, server, "yjp_acceptor")
    case_no = register_case(acceptor)
    acceptor.open_task("mediate", case_no)
    complete(acceptor, {"mediation_result": "unresolved"})

    supervisor = Person(browser, server, "jgzx_supervisor")
    supervisor.go("/console/supervision")
    assert supervisor.page.query_selector('tr.supervision[data-step="sign_for"]') is None

    clock.set(datetime(2025, 3, 5, 9, 0, tzinfo=SH).astimezone(timezone.utc))  # past sign-for's due time
    TimerService(rt, "browser-test").run_until_idle()
    supervisor.go("/console/supervision")
    row = supervisor.page.wait_for_selector('tr.supervision[data-step="sign_for"]')
    assert "late" in row.get_attribute("class").split()
    assert row.query_selector(".light-red") is not None
    assert supervisor.page.text_content('#light-counts tr[data-unit="YC-CGJ"] .count-red').strip() == "1"
    row.query_selector('input[name="note"]').fill("已电话督促城管局")
    row.query_selector('form[action$="/note"] button').click()
    supervisor.page.wait_for_load_state()
    assert "已电话督促城管局" in supervisor.page.text_content("main")
    shots(supervisor.page, "supervision")

    acceptor.go(f"/console/cases/{case_no}")
    assert "late" in classes_of(acceptor.page, "sign_for")
    shots(acceptor.page, "case-late-step")
    acceptor.close()
    supervisor.close()


def test_scope_and_csrf_refusals(server, browser, shots):
    acceptor = Person(browser, server, "yjp_acceptor")
    case_no = register_case(acceptor)

    other = Person(browser, server, "tjy_acceptor")  # another community
    answer = other.go(f"/console/cases/{case_no}")
    assert answer.status == 404 and "未找到" in other.page.text_content("#error-title")
    assert case_no not in other.page.text_content("main") or "不存在" in other.page.text_content("main") \
        or "does not exist" in other.page.text_content("main")
    shots(other.page, "not-found")

    acceptor.go(f"/console/cases/{case_no}")
    acceptor.page.evaluate("document.querySelector('#comment-form input[name=csrf_token]').remove()")
    acceptor.page.fill('#comment-form textarea[name="body"]', "没有令牌的消息")
    with acceptor.page.expect_navigation() as navigation:
        acceptor.page.click("#post-comment")
    assert navigation.value.status == 400
    assert "请求被拒绝" in acceptor.page.text_content("#error-title")
    shots(acceptor.page, "csrf-refused")
    acceptor.go(f"/console/cases/{case_no}")
    assert "没有令牌的消息" not in acceptor.page.text_content("#comments")
    acceptor.page.fill('#comment-form textarea[name="body"]', "请城管局尽快处理")
    acceptor.page.click("#post-comment")
    acceptor.page.wait_for_load_state()
    assert "请城管局尽快处理" in acceptor.page.text_content("#comments")

    designer = Person(browser, server, "designer")
    designer.go("/console/designer?process=dispute_urban_management")
    assert designer.page.is_visible("#versions")
    shots(designer.page, "designer")
    admin = Person(browser, server, "admin")
    admin.go("/console/incidents")
    assert admin.page.is_visible("#incidents")
    shots(admin.page, "incidents")
    signin = browser.new_context().new_page()
    signin.goto(server.url + "/")
    assert "登录" in signin.text_content("body") and signin.is_visible('input[type="password"]')
    external = signin.evaluate("""[...document.querySelectorAll('[src],[href]')]
        .map(e => e.src || e.href).filter(u => !u.startsWith(location.origin) && !u.startsWith('javascript:'))""")
    assert external == []
    shots(signin, "signin")
    for person in (acceptor, other, designer, admin):
        person.close()


def test_handling_and_the_other_procedures_through_the_pages(server, browser, shots):
    """Co-handling with a unit code list, the consolidation showing the co-handler's result; the grid
    worker's log entry becoming a case; the screening rounds; a hand-off to a mediation body."""
    acceptor = Person(browser, server, "yjp_acceptor")
    case_no = register_case(acceptor)
    acceptor.open_task("mediate", case_no)
    complete(acceptor, {"mediation_result": "unresolved"})
    handler = Person(browser, server, "cgj_handler")
    handler.open_task("sign_for", case_no)
    complete(handler, {"decision": "accept", "responsible_section": "执法一科", "responsible_person": "cgj_handler"})
    handler.open_task("handle", case_no, scope="mine")
    complete(handler, {"result": "会同环保局处置", "measures": "联合执法", "co_units": "YC-HBJ"})
    assert "YC-HBJ" in handler.page.text_content("#co-units")
    co = Person(browser, server, "hbj_handler")
    co.open_task("co_sign_for", case_no)
    shots(co.page, "co-sign-for")
    complete(co, {"decision": "accept", "responsible_section": "监察科", "responsible_person": "hbj_handler"})
    co.open_task("co_handle", case_no, scope="mine")
    complete(co, {"co_opinion": "已对排污口取样，责令整改"})
    handler.open_task("consolidate", case_no, scope="mine")
    assert "已对排污口取样" in handler.page.text_content('[data-shown="co_results"]')
    shots(handler.page, "consolidate")

    grid = Person(browser, server, "yjp_grid")
    grid.go("/console/log")
    for name, value in (("grid", "YJP-01"), ("household", "云集路12号3单元"), ("topic", "邻里"),
                        ("notes", "楼道堆物引发争执")):
        grid.page.fill(f"#log-form #f-{name}", value)
    grid.page.click("#record")
    grid.page.wait_for_load_state()
    row = grid.page.wait_for_selector('#log-entries tr[data-entry]')
    assert "云集路12号3单元" in row.text_content()
    shots(grid.page, "people-log")
    row.query_selector('input[name="reporter_name"]').fill("王五")
    row.query_selector('input[name="reporter_phone"]').fill("13812340000")
    row.query_selector('form.to-case button').click()
    grid.page.wait_for_load_state()
    assert "/console/cases/" in grid.page.url
    grid.go("/console/screening")
    assert grid.page.is_visible("#rounds")
    shots(grid.page, "screening")

    handler.go("/console/mediation")
    handler.page.select_option("#f-mediation_body", "XL-XLJD-TWH")
    handler.page.select_option("#f-category", "neighbour")
    handler.page.select_option("#f-community", "XL-XLJD-YJP")
    handler.page.fill("#f-title", "邻里漏水纠纷")
    handler.page.fill("#f-description", "移交人民调解")
    shots(handler.page, "mediation-handoff")
    handler.page.click("#hand-off")
    handler.page.wait_for_load_state()
    handler.page.wait_for_selector("svg.bpmn-diagram")
    assert "/console/cases/" in handler.page.url
    for person in (acceptor, handler, co, grid):
        person.close()
