"""Cases over HTTP: intake, the scoped and filtered list, one case, its events, comments."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from engine.store.models import Case, CaseTask
from tests.api_support import COMMUNITY, PHONE, intake_body


def _total(api, user="auditor", **params) -> int:
    resp = api.get("/api/v1/cases", user, query_string=params)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["total"]


def _case_nos(api, user, **params) -> set[str]:
    resp = api.get("/api/v1/cases", user, query_string={"per_page": 100, **params})
    assert resp.status_code == 200, resp.get_json()
    return {c["case_no"] for c in resp.get_json()["items"]}


# -- intake -------------------------------------------------------------------------------


def test_intake_returns_the_case_number_status_and_open_tasks(api):
    resp = api.post("/api/v1/cases", "yjp_acceptor", intake_body())
    assert resp.status_code == 201
    case = resp.get_json()
    assert case["case_no"] == "2025-000001" and case["status"] == "mediating"
    assert case["community"] == COMMUNITY and case["reporter"]["phone"] == PHONE
    [task] = case["open_tasks"]
    assert task["element"] == "mediate" and task["role"] == "acceptor" and task["unit"] == COMMUNITY
    events = api.get(f"/api/v1/cases/{case['case_no']}/events", "yjp_acceptor").get_json()
    assert events[0]["type"] == "case_started" and events[0]["actor"] == "yjp_acceptor"


def test_a_grid_worker_registers_for_their_own_community(api):
    case = api.register("gxl_grid", channel="grid_worker", community="WJG-DGQ-GXL")
    assert case["community"] == "WJG-DGQ-GXL"


def test_only_an_acceptor_or_grid_worker_of_the_community_registers(api):
    for user in ("cgj_handler", "cgj_leader", "xljd_dispatcher", "jgzx_supervisor", "auditor", "admin"):
        resp = api.post("/api/v1/cases", user, intake_body())
        assert resp.status_code == 403 and resp.get_json()["code"] == "forbidden", user
    resp = api.post("/api/v1/cases", "yjp_acceptor", intake_body(community="WJG-DGQ-GXL"))
    assert resp.status_code == 403
    assert _total(api) == 0


def test_bad_intake_names_each_field_and_registers_nothing(api):
    resp = api.post("/api/v1/cases", "yjp_acceptor", {"title": 5, "channel": "pigeon", "reporter": {"name": ""}})
    assert resp.status_code == 422
    body = resp.get_json()
    assert body["code"] == "invalid_input" and body["message"]
    assert set(body["errors"]) == {"title", "channel", "reporter.name", "reporter.phone", "description",
                                   "category", "location"}
    assert all(isinstance(m, list) and all(isinstance(x, str) for x in m) for m in body["errors"].values())
    resp = api.post("/api/v1/cases", "yjp_acceptor", intake_body(category="nonsense"))
    assert resp.status_code == 422 and set(resp.get_json()["errors"]) == {"category"}
    resp = api.post("/api/v1/cases", "yjp_acceptor", intake_body(title="漏水\x00"))
    assert resp.status_code == 422 and "title" in resp.get_json()["errors"]
    resp = api.post("/api/v1/cases", "yjp_acceptor", intake_body(extra="field"))
    assert resp.status_code == 422 and "extra" in resp.get_json()["errors"]
    resp = api.post("/api/v1/cases", "yjp_acceptor", [1, 2])
    assert resp.status_code == 422
    resp = api.client.post("/api/v1/cases", data='{"title": "漏水",', content_type="application/json",
                           headers=api.headers("yjp_acceptor"))
    assert resp.status_code == 400
    assert resp.get_json() == {"code": "malformed_request", "message": "the request body is not valid JSON",
                               "errors": {"json": ["Invalid JSON body."]}}
    assert _total(api) == 0


# -- the list -----------------------------------------------------------------------------


def test_each_unit_lists_only_the_cases_in_its_scope(api):
    yjp = api.register("yjp_acceptor")["case_no"]                                     # → YC-CGJ
    tjy = api.register("tjy_acceptor", category="neighbour", community="XL-XLJD-TJY")["case_no"]  # → street
    gxl = api.register("gxl_acceptor", category="traffic", community="WJG-DGQ-GXL")["case_no"]    # → YC-GAJ
    api.step(yjp, "mediate")
    api.step(tjy, "mediate", "tjy_acceptor", mediation_result="unresolved")
    api.step(gxl, "mediate", "gxl_acceptor", mediation_result="unresolved")
    expected = {
        "yjp_acceptor": {yjp}, "yjp_grid": {yjp}, "tjy_acceptor": {tjy}, "gxl_acceptor": {gxl},
        "dxl_acceptor": set(), "xljd_handler": {yjp, tjy}, "xljd_leader": {yjp, tjy}, "dgq_handler": {gxl},
        "cgj_handler": {yjp}, "cgj_leader": {yjp}, "gaj_dispatcher": {gxl}, "zjj_handler": set(),
        "xlsfj_handler": set(), "jgzx_supervisor": {yjp, tjy, gxl}, "auditor": {yjp, tjy, gxl},
    }
    actual = {user: _case_nos(api, user) for user in expected}
    assert actual == expected


def test_the_list_filters_and_pages(api, rt, clock):
    first = api.register()["case_no"]
    clock.advance(days=2)
    second = api.register(title="噪音扰民", description="夜间施工噪音", category="environment")["case_no"]
    clock.advance(days=2)
    third = api.register(title="邻里纠纷", location={"address": "西陵区夷陵大道100%号"},
                         category="neighbour")["case_no"]
    api.step(second, "mediate")
    assert _case_nos(api, "auditor", status="mediating") == {first, third}
    assert _case_nos(api, "auditor", status="signing") == {second}
    assert _case_nos(api, "auditor", category="environment") == {second}
    assert _case_nos(api, "auditor", unit="YC-HBJ") == {second}
    assert _case_nos(api, "auditor", unit=COMMUNITY) == {first, second, third}
    assert _case_nos(api, "auditor", level="department") == {second}
    assert _case_nos(api, "auditor", q="噪音") == {second}
    assert _case_nos(api, "auditor", q="100%") == {third}
    assert _case_nos(api, "auditor", q="%") == {third}
    assert _case_nos(api, "auditor", q=first) == {first}
    assert _case_nos(api, "auditor", q=PHONE) == set()  # personal data is not searchable
    t0 = (clock.now() - timedelta(days=4)).isoformat()
    assert _case_nos(api, "auditor", created_from=t0, created_to=(clock.now() - timedelta(days=1)).isoformat()) \
        == {first, second}
    assert _case_nos(api, "auditor", created_from=clock.now().isoformat()) == {third}
    # a date without an offset is Shanghai time: 8 hours ahead of UTC
    naive = (clock.now() + timedelta(hours=8)).replace(tzinfo=None).isoformat()
    assert _case_nos(api, "auditor", created_from=naive) == {third}

    def open_dues_from_rows(s):  # the engine keeps Case.open_due_at with the rows; this test wrote the rows
        s.execute(update(Case).values(open_due_at=select(func.min(CaseTask.due_at)).where(
            CaseTask.case_id == Case.id, CaseTask.state == "ready").scalar_subquery()))

    with rt.db.write() as s:  # deadlines as this test wants them, whatever the calendar made of them
        s.execute(update(CaseTask).values(due_at=clock.now() + timedelta(days=30)))
        open_dues_from_rows(s)
    assert _case_nos(api, "auditor", overdue="true") == set()
    with rt.db.write() as s:
        s.execute(update(CaseTask).where(CaseTask.bpmn_id == "sign_for")
                  .values(due_at=clock.now() - timedelta(hours=1)))
        open_dues_from_rows(s)
    assert _case_nos(api, "auditor", overdue="true") == {second}
    assert _case_nos(api, "auditor", overdue="false") == {first, third}
    items = api.get("/api/v1/cases", "auditor").get_json()["items"]
    assert [c["case_no"] for c in items] == [third, second, first]  # newest first
    assert [c["overdue"] for c in items] == [False, True, False]

    page = api.get("/api/v1/cases", "auditor", query_string={"per_page": 2, "page": 2}).get_json()
    assert page["total"] == 3 and page["page"] == 2 and page["per_page"] == 2
    assert [c["case_no"] for c in page["items"]] == [first]
    resp = api.get("/api/v1/cases", "auditor", query_string={"status": "lost", "per_page": 0, "overdue": "maybe",
                                                             "created_from": "yesterday"})
    assert resp.status_code == 422
    assert set(resp.get_json()["errors"]) == {"status", "per_page", "overdue", "created_from"}


# -- one case, its events -------------------------------------------------------------------


def test_a_case_outside_scope_is_the_same_404_as_an_unknown_one(api):
    case_no = api.register()["case_no"]
    for path in (f"/api/v1/cases/{case_no}", f"/api/v1/cases/{case_no}/events", f"/api/v1/cases/{case_no}/comments"):
        assert api.get(path, "yjp_acceptor").status_code == 200
        outside = api.get(path, "gxl_acceptor")
        unknown = api.get(path.replace(case_no, "2025-999999"), "gxl_acceptor")
        assert outside.status_code == unknown.status_code == 404
        assert outside.get_json()["code"] == unknown.get_json()["code"] == "case_not_found"
        assert outside.get_json()["message"].replace(case_no, "X") == unknown.get_json()["message"].replace(
            "2025-999999", "X")
    assert api.get("/api/v1/cases/not-a-number", "auditor").status_code == 404


def test_one_case_and_its_event_log_in_order(api):
    case_no, task = api.at_signing()
    case = api.case(case_no, "cgj_handler")
    assert case["status"] == "signing" and case["routed_unit"] == "YC-CGJ"
    assert [t["element"] for t in case["open_tasks"]] == ["sign_for"]
    events = api.get(f"/api/v1/cases/{case_no}/events", "cgj_handler").get_json()
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    kinds = [(e["type"], e["element"]) for e in events]
    assert kinds[0] == ("case_started", None)
    assert kinds.index(("task_claimed", "mediate")) < kinds.index(("task_completed", "mediate"))
    assert ("service_called", "route_case_task") in kinds and kinds[-1] == ("task_ready", "sign_for")
    claimed = next(e for e in events if e["type"] == "task_claimed")
    assert claimed["actor"] == "yjp_acceptor" and claimed["payload"] == {"assignee": "yjp_acceptor"}


# -- comments -------------------------------------------------------------------------------


def test_units_exchange_messages_on_a_case(api, clock):
    case_no, _ = api.at_signing()
    resp = api.post(f"/api/v1/cases/{case_no}/comments", "cgj_handler", {"body": "请社区协助联系当事人"})
    assert resp.status_code == 201
    assert resp.get_json() == {"id": resp.get_json()["id"], "case_no": case_no, "author": "cgj_handler",
                               "unit": "YC-CGJ", "body": "请社区协助联系当事人", "created_at": clock.now().isoformat()}
    clock.advance(minutes=5)
    assert api.post(f"/api/v1/cases/{case_no}/comments", "yjp_acceptor", {"body": "  已联系，明早到场  "}) \
        .status_code == 201
    thread = api.get(f"/api/v1/cases/{case_no}/comments", "jgzx_supervisor").get_json()
    assert [(c["author"], c["unit"], c["body"]) for c in thread] == [
        ("cgj_handler", "YC-CGJ", "请社区协助联系当事人"), ("yjp_acceptor", COMMUNITY, "已联系，明早到场")]
    assert api.post(f"/api/v1/cases/{case_no}/comments", "auditor", {"body": "查看"}).status_code == 403
    assert api.post(f"/api/v1/cases/{case_no}/comments", "gaj_handler", {"body": "?"}).status_code == 404
    for body in ({}, {"body": ""}, {"body": "   "}, {"body": "x" * 2001}, {"body": 5}):
        resp = api.post(f"/api/v1/cases/{case_no}/comments", "cgj_handler", body)
        assert resp.status_code == 422 and "body" in resp.get_json()["errors"], body
    assert len(api.get(f"/api/v1/cases/{case_no}/comments", "cgj_handler").get_json()) == 2
