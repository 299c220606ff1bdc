"""The OpenAPI document declares what the server does (observed on main by schemathesis --checks all).

Observed before: 409 bodies carried `task_state`, `current_version` and
`assignee`, which the error schema forbade; NUL refusals and a task's
required form fields were not in the document; `category` was a free string
though only routing-table keys are accepted. Each test here checks a real
answer or a real rule against the served document (tests/test_api_schemathesis.py
then runs every schemathesis check over every operation).
"""
from __future__ import annotations

import jsonschema_rs

from engine.errors import InvalidForm
from engine.rules.forms import json_schemas, parse_field, validate
from tests.api_support import STEPS, intake_body


def _spec(client) -> dict:
    return client.get("/api/openapi.json").get_json()


def _error_validator(spec):
    error = spec["components"]["schemas"]["Error"]
    return jsonschema_rs.Draft4Validator(error)


def test_conflict_bodies_fit_the_documented_error_schema(api):
    case_no, task = api.at_signing()
    url = f"/api/v1/tasks/{task['id']}"
    assert api.post(f"{url}/claim", "cgj_handler").status_code == 200
    claimed = api.post(f"{url}/claim", "cgj_handler2")
    version = api.case(case_no)["version"]
    stale = api.post(f"{url}/complete", "cgj_handler", {"data": STEPS["sign_for"][1], "version": version - 1})
    assert api.post(f"{url}/complete", "cgj_handler", {"data": STEPS["sign_for"][1]}).status_code == 200
    not_ready = api.post(f"{url}/complete", "cgj_handler", {"data": STEPS["sign_for"][1]})
    validator = _error_validator(_spec(api.client))
    for resp, detail in ((claimed, "assignee"), (stale, "current_version"), (not_ready, "task_state")):
        body = resp.get_json()
        assert resp.status_code == 409 and detail in body, body
        validator.validate(body)
    assert not validator.is_valid({"code": "x", "message": "y", "errors": {}, "undeclared": 1})


def test_the_intake_category_is_the_routing_tables_keys(api, rt):
    intake = _spec(api.client)["components"]["schemas"]["IntakeIn"]["properties"]
    assert intake["category"]["enum"] == sorted(rt.tables.routes) and "urban_management" in intake["category"]["enum"]
    assert "walk_in" in intake["channel"]["enum"]
    statistics = _spec(api.client)["paths"]["/api/v1/statistics"]["get"]["parameters"]
    assert next(p for p in statistics if p["name"] == "category")["schema"]["enum"] == sorted(rt.tables.routes)
    resp = api.post("/api/v1/cases", "yjp_acceptor", intake_body(category="weather"))
    assert resp.status_code == 422 and "category" in resp.get_json()["errors"]


def test_request_strings_declare_and_enforce_storable_text(api):
    spec = _spec(api.client)
    comment = spec["components"]["schemas"]["CommentIn"]["properties"]["body"]
    reporter = spec["components"]["schemas"]["ReporterIn"]["properties"]["name"]
    assert comment["pattern"] == reporter["pattern"] == "^[^\\u0000]*$"
    assert "pattern" not in spec["components"]["schemas"]["CaseOut"]["properties"]["title"]  # answers: no rule
    assert "lone surrogate" in spec["info"]["description"]
    case_no = api.register()["case_no"]
    for body in ('{"body": "a\\u0000b"}', '{"body": "a\\ud800b"}'):
        resp = api.client.post(f"/api/v1/cases/{case_no}/comments", data=body, content_type="application/json",
                               headers=api.headers("yjp_acceptor"))
        assert resp.status_code == 422 and "body" in resp.get_json()["errors"], body
    resp = api.get("/api/v1/cases", "auditor", query_string={"q": "a\x00b"})
    assert resp.status_code == 422 and "q" in resp.get_json()["errors"]


def test_task_data_is_declared_as_the_deployed_forms(api):
    data = _spec(api.client)["components"]["schemas"]["CompleteIn"]["properties"]["data"]
    titles = {v["title"].rsplit(":", 1)[1] for v in data["anyOf"]}
    # Identical forms are listed once: the sign-for of a unit and of a co-handling unit are one.
    assert {"mediate", "handle", "approve", "evaluate", "review", "decide"} <= titles
    assert titles & {"sign_for", "co_sign_for"}
    sign_for = [v for v in data["anyOf"] if v["title"].endswith("sign_for")]
    required = [v["required"] for v in sign_for]
    assert ["decision", "responsible_person", "responsible_section"] in required
    assert ["decision", "refuse_reason"] in required and all("decision" in r for r in required)
    assert all(v["additionalProperties"] is False for v in sign_for)


FORM = [parse_field("decision", "enum:approve|return required"),
        parse_field("return_reason", "text required_if:decision=return"),
        parse_field("count", "int"), parse_field("urgent", "bool"), parse_field("note", "string")]
SAMPLES = [
    {"decision": "approve"}, {"decision": "return"}, {"decision": "return", "return_reason": "缺材料"},
    {"decision": "return", "return_reason": "   "}, {"decision": "approve", "return_reason": None},
    {"decision": "maybe"}, {}, {"decision": "approve", "count": 3}, {"decision": "approve", "count": "3"},
    {"decision": "approve", "count": True}, {"decision": "approve", "urgent": False},
    {"decision": "approve", "urgent": 1}, {"decision": "approve", "note": "x" * 200},
    {"decision": "approve", "note": "x" * 201}, {"decision": "approve", "note": "a\x00"},
    {"decision": "approve", "other": 1}, {"decision": "approve", "note": "\x1c"}, {"decision": "approve", "note": ""},
    {"decision": "return", "return_reason": "\u3000"}, {"decision": None},
]


def _nullable(schema: dict) -> dict:
    props = {k: ({**v, "type": [v["type"], "null"], **({"enum": [*v["enum"], None]} if "enum" in v else {})}
                 if v.get("nullable") else v) for k, v in schema["properties"].items()}
    return {**schema, "properties": {k: {kk: vv for kk, vv in v.items() if kk != "nullable"} for k, v in props.items()}}


def test_the_declared_form_schema_accepts_exactly_what_validation_accepts():
    validators = [jsonschema_rs.Draft4Validator(_nullable(s)) for s in json_schemas(FORM)]
    assert len(validators) == 2  # one per branch of the required_if
    for data in SAMPLES:
        try:
            validate(FORM, data)
            accepted = True
        except InvalidForm:
            accepted = False
        assert any(v.is_valid(data) for v in validators) == accepted, data


def test_the_tracking_429_is_documented_with_retry_after(client):
    spec = _spec(client)
    refused = spec["paths"]["/api/v1/track/{tracking_code}"]["get"]["responses"]["429"]
    assert "Retry-After" in refused["headers"]
    assert refused["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert spec["paths"]["/api/v1/track/{tracking_code}"]["get"]["security"] == []
    assert "/api/v1/track/{case_no}" not in spec["paths"]
