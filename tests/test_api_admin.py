"""The administrators' API for units and users: field-naming errors, 409s naming what is in the way,
and changes that every running worker sees at once (two app instances on one database)."""
from __future__ import annotations

import pytest

from tests.api_support import ApiClient

UNITS = "/api/v1/admin/units"
USERS = "/api/v1/admin/users"


def patch(api, path, user, json):
    return api.client.patch(path, headers=api.headers(user), json=json)


def test_only_administrators_may_use_it(api, client):
    for method, path in (("get", UNITS), ("post", UNITS), ("get", USERS), ("post", USERS),
                         ("patch", f"{UNITS}/YC"), ("post", f"{UNITS}/YC/deactivate"),
                         ("patch", f"{USERS}/cgj_handler"), ("post", f"{USERS}/cgj_handler/tokens")):
        assert getattr(client, method)(path, json={}).status_code == 401
        resp = getattr(api.client, method)(path, headers=api.headers("jgzx_supervisor"), json={})
        assert resp.status_code in (403, 422), (method, path, resp.get_json())
        if resp.status_code == 422:  # the body is checked first; a valid one is still refused
            assert method != "get"
    assert api.post(UNITS, "cgj_leader", {"code": "Q", "name": "q", "kind": "city"}).status_code == 403
    assert api.get(UNITS, "admin").status_code == 200


def test_units_are_created_changed_and_refused_by_field(api):
    made = api.post(UNITS, "admin", {"code": "XL-XLJD-NEW", "name": "新社区", "kind": "community",
                                     "parent": "XL-XLJD", "active": False})
    assert made.status_code == 201, made.get_json()
    assert made.get_json() == {"code": "XL-XLJD-NEW", "name": "新社区", "kind": "community", "level": "community",
                               "active": False, "parent": "XL-XLJD", "allowed_gaps": []}
    refusals = [
        ({"code": "XL-XLJD-NEW", "name": "x", "kind": "community", "parent": "XL-XLJD"}, 409, "already_exists", "code"),
        ({"code": "Q1", "name": "x", "kind": "community", "parent": "NOPE"}, 422, "invalid_input", "parent"),
        ({"code": "Q2", "name": "x", "kind": "planet"}, 422, "invalid_input", "kind"),
        ({"code": "bad code!", "name": "x", "kind": "city"}, 422, "invalid_input", "code"),
        ({"name": "x", "kind": "city"}, 422, "invalid_input", "code"),
        ({"code": "Q3", "name": "x", "kind": "city", "extra": 1}, 422, "invalid_input", "extra"),
    ]
    for body, status, code, field in refusals:
        resp = api.post(UNITS, "admin", body)
        assert resp.status_code == status and resp.get_json()["code"] == code, (body, resp.get_json())
        assert field in resp.get_json()["errors"], (body, resp.get_json())
    assert patch(api, f"{UNITS}/NOPE", "admin", {"name": "x"}).get_json()["code"] == "unit_not_found"
    cycle = patch(api, f"{UNITS}/XL", "admin", {"parent": "XL-XLJD"})
    assert cycle.status_code == 422 and "cycle" in cycle.get_json()["errors"]["parent"][0]
    assert "code" in patch(api, f"{UNITS}/XL", "admin", {"code": "XX"}).get_json()["errors"]
    renamed = patch(api, f"{UNITS}/XL-XLJD-NEW", "admin", {"name": "新建社区"})
    assert renamed.status_code == 200 and renamed.get_json()["name"] == "新建社区"
    # activating an unstaffed community leaves its mediation with no candidate: refused, naming the gap
    gap = patch(api, f"{UNITS}/XL-XLJD-NEW", "admin", {"active": True})
    assert gap.status_code == 409 and gap.get_json()["code"] == "organisation_gaps"
    assert any("community XL-XLJD-NEW: lane 社区 (role acceptor)" in g for g in gap.get_json()["errors"]["gaps"])
    listed = api.get(UNITS + "?active=false", "admin").get_json()
    assert [u["code"] for u in listed] == ["XL-XLJD-NEW"]


def test_users_are_created_changed_deactivated_and_given_tokens(api, client):
    refusals = [
        ({"username": "u1", "unit": "YC-CGJ", "roles": ["pope"]}, 422, "roles"),
        ({"username": "u1", "unit": "NOWHERE", "roles": ["handler"]}, 422, "unit"),
        ({"username": "u1", "unit": "YC-CGJ", "roles": []}, 422, "roles"),
        ({"username": "cgj_handler", "unit": "YC-CGJ", "roles": ["handler"]}, 409, "username"),
        ({"username": "u 1", "unit": "YC-CGJ", "roles": ["handler"]}, 422, "username"),
    ]
    for body, status, field in refusals:
        resp = api.post(USERS, "admin", body)
        assert resp.status_code == status and field in resp.get_json()["errors"], (body, resp.get_json())
    made = api.post(USERS, "admin", {"username": "cgj_handler3", "display_name": "新人", "unit": "YC-CGJ",
                                     "roles": ["handler"]})
    assert made.status_code == 201 and made.get_json()["roles"] == ["handler"]
    token = api.post(f"{USERS}/cgj_handler3/tokens", "admin", {}).get_json()["token"]
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert me["unit"]["code"] == "YC-CGJ" and me["display_name"] == "新人"
    moved = patch(api, f"{USERS}/cgj_handler3", "admin", {"unit": "YC-ZJJ", "roles": ["handler", "dispatcher"]})
    assert moved.status_code == 200 and moved.get_json()["unit"]["code"] == "YC-ZJJ"
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert me["unit"]["code"] == "YC-ZJJ" and me["acts_as"] == ["dispatcher", "handler"]
    assert api.post(f"{USERS}/cgj_handler3/deactivate", "admin").status_code == 200
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert api.post(f"{USERS}/cgj_handler3/tokens", "admin", {}).status_code == 409
    assert api.post(f"{USERS}/nobody/tokens", "admin", {}).get_json()["code"] == "user_not_found"
    listed = api.get(USERS + "?unit=YC-ZJJ&active=false", "admin").get_json()
    assert [u["username"] for u in listed] == ["cgj_handler3"]


def test_removing_the_last_candidate_is_refused_naming_the_gap_unless_allowed(api):
    assert api.post(f"{USERS}/hbj_handler/deactivate", "admin").status_code == 200  # the dispatcher acts for handlers
    refused = api.post(f"{USERS}/hbj_dispatcher/deactivate", "admin")
    assert refused.status_code == 409 and refused.get_json()["code"] == "organisation_gaps"
    assert refused.get_json()["errors"]["gaps"] == [
        "category environment: lane 责任单位 (role handler) -> YC-HBJ: no active user of YC-HBJ holds role handler"]
    assert api.get(USERS + "?unit=YC-HBJ&active=true", "admin").get_json()[0]["username"] == "hbj_dispatcher"
    allowed = api.post(f"{USERS}/hbj_dispatcher/deactivate?allow_gaps=true", "admin")
    assert allowed.status_code == 200 and allowed.get_json()["active"] is False
    assert allowed.get_json()["allowed_gaps"] == refused.get_json()["errors"]["gaps"]


def test_deactivating_a_unit_in_use_is_409_naming_its_tasks_users_and_units(api):
    case = api.register()
    api.step(case["case_no"], "mediate", mediation_result="unresolved")  # now at sign-for in YC-CGJ
    resp = api.post(f"{UNITS}/YC-CGJ/deactivate", "admin")
    body = resp.get_json()
    assert resp.status_code == 409 and body["code"] == "unit_in_use"
    items = body["errors"]["units.YC-CGJ"]
    assert any(f"open task sign_for of case {case['case_no']}" in i for i in items)
    assert f"open case {case['case_no']} is routed to it" in items and "active user cgj_leader" in items
    street = api.post(f"{UNITS}/XL-XYJD/deactivate", "admin").get_json()
    assert "active unit XL-XYJD-DXL under it" in street["errors"]["units.XL-XYJD"]
    assert api.get(UNITS + "?active=false", "admin").get_json() == []


def test_a_change_made_through_one_worker_is_seen_by_another_at_once(app, api, demo, db_url):
    """Two app instances on one database: no restart, no waiting."""
    from app import create_app

    other_app = create_app({"SQLALCHEMY_DATABASE_URI": db_url, "TESTING": True})
    other = ApiClient(other_app.test_client(), demo)
    assert other.get("/api/v1/me", "yjp_acceptor").status_code == 200  # the other worker has read the organisation
    assert other.get("/api/v1/me", "admin").get_json()["unit"]["name"] == "宜昌市社区网格管理监管中心"

    # through the first worker: a new community, staffed while inactive, then opened
    assert api.post(UNITS, "admin", {"code": "XL-XLJD-NEW", "name": "新社区", "kind": "community",
                                     "parent": "XL-XLJD", "active": False}).status_code == 201
    assert api.post(USERS, "admin", {"username": "new_acceptor", "unit": "XL-XLJD-NEW",
                                     "roles": ["acceptor"]}).status_code == 201
    assert patch(api, f"{UNITS}/XL-XLJD-NEW", "admin", {"active": True}).status_code == 200
    tokens = dict(demo, new_acceptor=api.post(f"{USERS}/new_acceptor/tokens", "admin", {}).get_json()["token"])
    other = ApiClient(other_app.test_client(), tokens)

    # the second worker, at once: the new user registers a case in the new community, the street sees it
    me = other.get("/api/v1/me", "new_acceptor").get_json()
    assert me["unit"] == {"code": "XL-XLJD-NEW", "name": "新社区", "kind": "community", "level": "community",
                          "parent": "XL-XLJD"}
    resp = other.post("/api/v1/cases", "new_acceptor", _intake())
    assert resp.status_code == 201, resp.get_json()
    case_no = resp.get_json()["case_no"]
    assert resp.get_json()["open_tasks"][0]["unit"] == "XL-XLJD-NEW"
    assert other.get(f"/api/v1/cases/{case_no}", "xljd_leader").status_code == 200  # the street's scope grew

    # renamed and then the user deactivated through the first: the second answers accordingly at once
    patch(api, f"{UNITS}/XL-XLJD-NEW", "admin", {"name": "新建社区"})
    assert other.get("/api/v1/me", "new_acceptor").get_json()["unit"]["name"] == "新建社区"
    assert api.post(f"{USERS}/new_acceptor/deactivate?allow_gaps=true", "admin").status_code == 200
    assert other.get("/api/v1/me", "new_acceptor").status_code == 401
    from app import db

    with other_app.app_context():
        db.engine.dispose()


def _intake():
    from tests.api_support import intake_body

    body = intake_body()
    body.pop("community", None)
    return body


def test_two_changes_that_each_leave_a_candidate_cannot_together_remove_the_last(rt, demo, db_url):
    """Write skew: both deactivations start together; the organisation lock makes the second see the first."""
    import threading

    from engine.errors import OrganisationGaps
    from engine.rules.access import Caller
    from engine.services.org_admin import admin_deactivate_user

    if db_url.startswith("sqlite"):
        pytest.skip("SQLite runs one write transaction at a time: there is no overlap to serialise")
    admin = Caller("admin", "admin", "YC-JGZX", "supervision_centre", frozenset({"admin"}))
    barrier, waited = threading.Barrier(2, timeout=20), set()

    def together(_session):
        name = threading.current_thread().name
        if name.startswith("deactivate-") and name not in waited:
            waited.add(name)
            barrier.wait()  # both transactions have begun before either takes the organisation lock

    rt.db.on_begin.insert(0, together)
    outcomes = {}

    def run(username):
        try:
            admin_deactivate_user(rt, admin, username)
            outcomes[username] = "done"
        except OrganisationGaps as exc:
            outcomes[username] = exc.gaps

    threads = [threading.Thread(target=run, args=(u,), name=f"deactivate-{u}")
               for u in ("hbj_handler", "hbj_dispatcher")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    rt.db.on_begin.remove(together)
    assert sorted(v == "done" for v in outcomes.values()) == [False, True], outcomes
    refused = next(v for v in outcomes.values() if v != "done")
    assert refused == ["category environment: lane 责任单位 (role handler) -> YC-HBJ: no active user of YC-HBJ "
                       "holds role handler"]


def test_a_case_is_not_routed_to_a_deactivated_unit(api):
    for user in ("hbj_handler", "hbj_dispatcher", "hbj_leader"):
        assert api.post(f"{USERS}/{user}/deactivate?allow_gaps=true", "admin").status_code == 200
    closed = api.post(f"{UNITS}/YC-HBJ/deactivate?allow_gaps=true", "admin")
    assert closed.status_code == 200 and closed.get_json()["active"] is False
    assert any("YC-HBJ is inactive" in g for g in closed.get_json()["allowed_gaps"])
    case = api.register(category="environment")
    task = case["open_tasks"][0]
    resp = api.post(f"/api/v1/tasks/{task['id']}/complete", "yjp_acceptor",
                    {"data": {"mediation_result": "unresolved"}})
    assert resp.status_code >= 400 and "YC-HBJ" in resp.get_json()["message"], resp.get_json()
    assert api.case(case["case_no"])["open_tasks"][0]["element"] == "mediate"  # rolled back, still at the community
