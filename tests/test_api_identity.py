"""Identity: tokens, users and the demo seed (HTTP and CLI), /me, /units, health and the OpenAPI document."""
from __future__ import annotations

import hashlib
import tomllib

from sqlalchemy import func, select

from engine.rules.access import ROLES
from engine.services.org import issue_token
from engine.store.org_models import ApiToken, AppUser, Unit, UserRole

PROTECTED = [
    ("get", "/api/v1/cases"), ("post", "/api/v1/cases"), ("get", "/api/v1/cases/2025-000001"),
    ("get", "/api/v1/cases/2025-000001/events"), ("get", "/api/v1/cases/2025-000001/comments"),
    ("get", "/api/v1/cases/2025-000001/replay"), ("get", "/api/v1/cases/2025-000001/path"),
    ("post", "/api/v1/cases/2025-000001/comments"), ("get", "/api/v1/tasks"),
    ("get", "/api/v1/tasks/00000000-0000-0000-0000-000000000000"),
    ("post", "/api/v1/tasks/00000000-0000-0000-0000-000000000000/claim"),
    ("post", "/api/v1/tasks/00000000-0000-0000-0000-000000000000/unclaim"),
    ("post", "/api/v1/tasks/00000000-0000-0000-0000-000000000000/delegate"),
    ("post", "/api/v1/tasks/00000000-0000-0000-0000-000000000000/complete"),
    ("get", "/api/v1/processes"), ("get", "/api/v1/processes/dispute_urban_management/versions/1/bpmn"),
    ("post", "/api/v1/processes"), ("post", "/api/v1/processes/validate"),
    ("get", "/api/v1/processes/dispute_urban_management/versions"), ("get", "/api/v1/processes/dispute_urban_management/diff?from=1&to=1"),
    ("get", "/api/v1/units"), ("get", "/api/v1/me"), ("get", "/api/v1/supervision/overdue"),
    ("post", "/api/v1/supervision/1/note"), ("post", "/api/v1/supervision/1/close"),
    ("get", "/api/v1/admin/apikeys"), ("post", "/api/v1/admin/apikeys"), ("post", "/api/v1/admin/apikeys/1/revoke"),
    ("get", "/api/v1/statistics?from=2025-03-01&to=2025-03-31"), ("get", "/api/v1/statistics/definitions"),
    ("get", "/api/v1/statistics/charts/trend.svg"), ("get", "/api/v1/assessment/2025-03"),
    ("get", "/api/v1/assessment/2025-03.xlsx"),
    ("get", "/api/v1/incidents"), ("get", "/api/v1/incidents/1"), ("post", "/api/v1/incidents/1/retry"),
    ("post", "/api/v1/mediation/dockings"), ("get", "/api/v1/mediation/dockings/2025-000001"),
    ("post", "/api/v1/assessments"), ("get", "/api/v1/assessments/2025-000001"),
    ("post", "/api/v1/assessments/2025-000001/approval"), ("post", "/api/v1/assessments/2025-000001/links"),
    ("post", "/api/v1/screening/schedules"), ("get", "/api/v1/screening/rounds"),
    ("post", "/api/v1/screening/tasks/00000000-0000-0000-0000-000000000000/findings"),
    ("get", "/api/v1/screening/log"), ("post", "/api/v1/screening/log"), ("get", "/api/v1/screening/log/counts?by=grid"),
    ("post", "/api/v1/screening/log/1/case"),
]


def test_health_needs_no_token(client, db_url):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    body = resp.get_json()
    assert {k: body[k] for k in ("status", "database")} == \
        {"status": "ok", "database": "sqlite" if db_url.startswith("sqlite") else "postgresql"}


def test_openapi_document_and_swagger_ui(client):
    resp = client.get("/api/openapi.json")
    assert resp.status_code == 200
    spec = resp.get_json()
    assert spec["openapi"] == "3.0.3"
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert spec["security"] == [{"bearerAuth": []}]
    paths = {f"{method.upper()} {path}" for path, ops in spec["paths"].items() for method in ops
             if method in ("get", "post")}
    assert paths == {
        "GET /healthz", "GET /api/v1/cases", "POST /api/v1/cases", "GET /api/v1/cases/{case_no}",
        "GET /api/v1/cases/{case_no}/events", "GET /api/v1/cases/{case_no}/comments",
        "GET /api/v1/cases/{case_no}/replay", "GET /api/v1/cases/{case_no}/path",
        "POST /api/v1/cases/{case_no}/comments", "GET /api/v1/tasks", "GET /api/v1/tasks/{task_id}",
        "POST /api/v1/tasks/{task_id}/claim", "POST /api/v1/tasks/{task_id}/unclaim",
        "POST /api/v1/tasks/{task_id}/delegate", "POST /api/v1/tasks/{task_id}/complete",
        "GET /api/v1/processes", "GET /api/v1/processes/{process_id}/versions/{n}/bpmn",
        "POST /api/v1/processes", "POST /api/v1/processes/validate", "GET /api/v1/processes/{process_id}/versions",
        "GET /api/v1/processes/{process_id}/diff",
        "GET /api/v1/units", "GET /api/v1/me", "GET /api/v1/track/{tracking_code}",
        "GET /api/v1/supervision/overdue", "POST /api/v1/supervision/{record_id}/note",
        "POST /api/v1/supervision/{record_id}/close",
        "GET /api/v1/statistics", "GET /api/v1/statistics/definitions", "GET /api/v1/statistics/charts/{chart}.svg",
        "GET /api/v1/assessment/{month}", "GET /api/v1/assessment/{month}.xlsx",
        "POST /api/v1/intake", "GET /api/v1/admin/apikeys", "POST /api/v1/admin/apikeys",
        "POST /api/v1/admin/apikeys/{client}/revoke",
        "GET /api/v1/admin/units", "POST /api/v1/admin/units", "POST /api/v1/admin/units/{code}/deactivate",
        "GET /api/v1/admin/users", "POST /api/v1/admin/users", "POST /api/v1/admin/users/{username}/deactivate",
        "POST /api/v1/admin/users/{username}/tokens",
        "GET /api/v1/incidents", "GET /api/v1/incidents/{incident_id}", "POST /api/v1/incidents/{incident_id}/retry",
        "GET /api/v1/cases/{case_no}/notifications", "GET /api/v1/outbox", "POST /api/v1/outbox/{message_id}/retry",
        "GET /readyz", "GET /metrics",
        "POST /api/v1/mediation/dockings", "GET /api/v1/mediation/dockings/{case_no}",
        "POST /api/v1/assessments", "GET /api/v1/assessments/{case_no}", "POST /api/v1/assessments/{case_no}/approval",
        "POST /api/v1/assessments/{case_no}/links",
        "POST /api/v1/screening/schedules", "GET /api/v1/screening/rounds",
        "POST /api/v1/screening/tasks/{task_id}/findings", "GET /api/v1/screening/log", "POST /api/v1/screening/log",
        "GET /api/v1/screening/log/counts", "POST /api/v1/screening/log/{entry_id}/case",
    }
    assert spec["paths"]["/api/v1/intake"]["post"]["security"] == [{"apiKey": []}]
    assert spec["paths"]["/healthz"]["get"]["security"] == []
    assert spec["paths"]["/api/v1/track/{tracking_code}"]["get"]["security"] == []
    assert "security" not in spec["paths"]["/api/v1/cases"]["get"]
    assert {"code", "message", "errors"} <= set(spec["components"]["schemas"]["Error"]["properties"])
    assert spec["components"]["schemas"]["Error"]["required"] == ["code", "errors", "message"]
    intake = spec["paths"]["/api/v1/cases"]["post"]
    assert "201" in intake["responses"] and "422" in intake["responses"]
    ui = client.get("/api/docs")
    assert ui.status_code == 200 and b"swagger-ui" in ui.data and b"/api/openapi.json" in ui.data


def test_every_protected_endpoint_needs_a_valid_token(api):
    for n, (method, path) in enumerate(PROTECTED):
        address = {"REMOTE_ADDR": f"10.0.{n}.1"}  # each its own client: ten refusals lock an address out
        for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic eDp5"},
                        {"Authorization": f"Token {api.tokens['auditor']}"}):
            resp = getattr(api.client, method)(path, headers=headers, json={}, environ_base=address)
            assert resp.status_code == 401, (method, path, headers, resp.get_json())
            body = resp.get_json()
            assert body["code"] == "unauthorized" and body["errors"] == {}
            assert resp.headers["WWW-Authenticate"] == "Bearer"


def test_a_revoked_token_is_refused(api, rt):
    old = api.tokens["cgj_handler"]
    new = issue_token(rt, "cgj_handler", revoke_others=True)
    assert api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {old}"}).status_code == 401
    resp = api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {new}"})
    assert resp.status_code == 200 and resp.get_json()["username"] == "cgj_handler"


def test_tokens_are_stored_only_as_hashes(rt, demo):
    with rt.db.read() as s:
        hashes = set(s.scalars(select(ApiToken.token_hash)))
        last_used = s.scalars(select(ApiToken.last_used_at)).all()
    assert len(hashes) == len(demo)
    for token in demo.values():
        assert token not in hashes and hashlib.sha256(token.encode()).hexdigest() in hashes
    assert all(t is None for t in last_used)


def test_last_use_is_recorded(api, rt, clock):
    assert api.get("/api/v1/me", "cgj_leader").status_code == 200
    with rt.db.read() as s:
        used = s.scalar(select(ApiToken.last_used_at).join(AppUser, AppUser.id == ApiToken.user_id)
                        .where(AppUser.username == "cgj_leader"))
    assert used == clock.now()


def test_me(api):
    me = api.get("/api/v1/me", "cgj_dispatcher").get_json()
    assert me["username"] == "cgj_dispatcher" and me["display_name"].startswith("钱丽")
    assert me["unit"] == {"code": "YC-CGJ", "name": "宜昌市城市管理局", "kind": "city_department", "level": "city",
                          "parent": "YC"}
    assert me["roles"] == ["dispatcher"] and me["acts_as"] == ["dispatcher", "handler"]


def test_units_form_a_tree_with_kinds_and_levels(api, rt):
    units = {u["code"]: u for u in api.get("/api/v1/units", "auditor").get_json()}
    assert set(units) == set(rt.tables.units)
    assert units["YC"] == {"code": "YC", "name": "宜昌市", "kind": "city", "level": "city", "parent": None}
    assert units["XL-XLJD-YJP"]["kind"] == "community" and units["XL-XLJD-YJP"]["parent"] == "XL-XLJD"
    assert units["XL-XLJD"]["level"] == "street" and units["XL-SFJ"]["level"] == "district"
    assert units["XL-ZZB"]["kind"] == "coordination_office" and units["XL-ZZB"]["level"] == "district"
    assert units["YC-JGZX"]["kind"] == "supervision_centre" and units["YC-LXHY"]["kind"] == "joint_meeting"
    for unit in units.values():
        assert unit["parent"] is None or unit["parent"] in units


def test_demo_users_hold_every_role_in_the_right_units(rt):
    users = tomllib.loads((rt.processes_dir / "demo_users.toml").read_text())["users"]
    assert {r for u in users for r in u["roles"]} == set(ROLES)
    kinds = {u["username"]: rt.tables.units[u["unit"]].kind for u in users}
    for u in users:
        if "grid_worker" in u["roles"]:
            assert kinds[u["username"]] == "community", u
        if "acceptor" in u["roles"]:  # a community's desk, or the hotline desk of first contact
            assert kinds[u["username"]] in ("community", "intake_desk"), u
        if "supervisor" in u["roles"]:
            assert u["unit"] == "YC-JGZX"
    handler_units = {u["unit"] for u in users if "handler" in u["roles"]}
    assert sum(rt.tables.units[c].kind == "city_department" for c in handler_units) >= 3
    assert any(rt.tables.units[c].kind == "street" for c in handler_units)
    for unit in ("YC-CGJ", "XL-XLJD"):
        roles = {r for u in users if u["unit"] == unit for r in u["roles"]}
        assert {"handler", "dispatcher", "leader"} <= roles, unit


# -- the command line ---------------------------------------------------------------------


def _counts(rt) -> tuple:
    with rt.db.read() as s:
        return tuple(s.scalar(select(func.count()).select_from(t)) for t in (Unit, AppUser, UserRole, ApiToken)) \
            + (tuple(s.scalars(select(ApiToken.token_hash).order_by(ApiToken.id))),)


def test_cli_users_create_and_token(app, client):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create", "newbie", "--unit", "YC-CGJ", "--role", "handler",
                                 "--role", "dispatcher", "--name", "新同事"])
    assert result.exit_code == 0, result.output
    assert "created newbie in YC-CGJ as dispatcher, handler" in result.output
    result = runner.invoke(args=["users", "token", "newbie"])
    assert result.exit_code == 0
    token = result.output.strip()
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert me["username"] == "newbie" and me["display_name"] == "新同事" and me["roles"] == ["dispatcher", "handler"]
    listing = runner.invoke(args=["users", "list"])
    assert "newbie" in listing.output and "YC-CGJ" in listing.output


def test_cli_errors_are_messages_not_tracebacks(app):
    runner = app.test_cli_runner()
    runner.invoke(args=["users", "create", "taken", "--unit", "YC-CGJ", "--role", "handler"])
    for args, expected in (
        (["users", "create", "x1", "--unit", "NOWHERE", "--role", "handler"], "unknown unit 'NOWHERE'"),
        (["users", "create", "x2", "--unit", "YC-CGJ", "--role", "wizard"], "unknown role 'wizard'"),
        (["users", "create", "taken", "--unit", "YC-CGJ", "--role", "handler"], "already exists"),
        (["users", "create", "bad name", "--unit", "YC-CGJ", "--role", "handler"], "username"),
        (["users", "token", "nobody"], "user 'nobody' does not exist"),
    ):
        result = runner.invoke(args=args)
        assert result.exit_code == 1, (args, result.output)
        assert expected in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_cli_seed_demo_is_idempotent_and_writes_tokens_once(app, client, rt, tmp_path):
    runner = app.test_cli_runner()
    token_file = tmp_path / "tokens.tsv"
    first = runner.invoke(args=["seed", "demo", "--token-file", str(token_file)])
    assert first.exit_code == 0, first.output
    tokens = dict(line.split("\t") for line in token_file.read_text().splitlines())
    n_users = len(tomllib.loads((rt.processes_dir / "demo_users.toml").read_text())["users"])
    assert len(tokens) == n_users and "yjp_acceptor" in tokens
    for name, token in tokens.items():
        assert token not in first.output
    resp = client.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens['cgj_leader']}"})
    assert resp.get_json()["username"] == "cgj_leader"

    before = _counts(rt)
    second = runner.invoke(args=["seed", "demo"])
    assert second.exit_code == 0 and "0 created, 0 updated" in second.output and "units: 0 changed" in second.output
    assert all(token not in second.output for token in tokens.values())
    assert _counts(rt) == before

    rotated = runner.invoke(args=["seed", "demo", "--print-tokens"])
    assert rotated.exit_code == 0
    fresh = dict(line.split("\t") for line in rotated.output.splitlines() if "\t" in line)
    assert set(fresh) == set(tokens)
    old = client.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens['cgj_leader']}"})
    new = client.get("/api/v1/me", headers={"Authorization": f"Bearer {fresh['cgj_leader']}"})
    assert old.status_code == 401 and new.status_code == 200
