"""Schemathesis against the OpenAPI document with every check: the server does what the document says.

Every operation of /api/openapi.json is fed Hypothesis-generated requests
that fit the document (positive) and that break it (negative), as a
community acceptor with a real token and with a demo case in the database;
operations with an id in their path are also fed the ids of that case and
its open task, so the generated requests reach real resources. Every one of
schemathesis' checks runs on every answer (no 5xx; status codes, content
types, headers and bodies as documented; schema-valid requests accepted,
invalid ones refused; authentication not ignored; ...).

One check is sharpened rather than taken as is: the document declares a
task's `data` as one of the deployed forms, but which form applies depends
on the task in the path, which no static document can tie to the body. So
on `complete`, a 422 `invalid_form` to schema-valid data passes only when
the data really does not fit the form of the task it was sent to (as
GET /api/v1/tasks/{id} lists it, checked with `jsonschema_rs` against
`engine.rules.forms.json_schemas`). Examples are derandomized, so a run is
repeatable.
"""
from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone

import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks

from engine.rules.forms import FormField, json_schemas

# Per operation, mode and path: CI keeps the default, a deeper local run raises it.
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "5"))
INTAKE = "POST /api/v1/cases"
PERIODS = ("GET /api/v1/statistics", "GET /api/v1/statistics/charts/{chart}.svg")
EARLIEST_REPORT = datetime(2000, 1, 1, tzinfo=timezone.utc)
COMPLETE = "POST /api/v1/tasks/{task_id}/complete"
LIMITS = {"RATELIMIT_TRACKING": "100000 per minute", "RATELIMIT_FAILED_SIGNIN": "100000 per minute"}


def _form(field: dict) -> FormField:
    cond = field.get("required_if")
    return FormField(field["name"], field["type"], field["required"], tuple(field.get("choices", ())),
                     (cond["field"], cond["value"]) if cond else None)


def _json_schema(openapi: dict) -> dict:
    """OpenAPI 3.0's `nullable` in plain JSON Schema."""
    out = {k: _json_schema(v) if isinstance(v, dict) else v for k, v in openapi.items() if k != "nullable"}
    if openapi.get("nullable"):
        out["type"] = [openapi["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if "properties" in openapi:
        out["properties"] = {k: _json_schema(v) for k, v in openapi["properties"].items()}
    return out


def _fits(data, form: list[FormField]) -> bool:
    return any(jsonschema_rs.Draft4Validator(_json_schema(s)).is_valid(data) for s in json_schemas(form))


def _all_checks(client, headers):
    load_all_checks()
    everything = list(CHECKS.get_all())
    positive = next(c for c in everything if c.__name__ == "positive_data_acceptance")

    def form_refusals_are_the_task_forms(ctx, response, case):
        """On complete, a refused schema-valid form must be one the task's own form refuses."""
        meta = case.meta
        if response.status_code != 422 or meta is None or not meta.generation.mode.is_positive:
            return positive(ctx, response, case)
        task = client.get(f"/api/v1/tasks/{case.path_parameters['task_id']}", headers=headers)
        assert task.status_code == 200, task.get_json()
        data = case.body["data"]
        assert not _fits(data, [_form(f) for f in task.get_json()["form"]]), \
            f"{data!r} fits the form of {task.get_json()['element']} and was refused: {response.text}"
        return None

    def reported_at_bounds_are_the_servers(ctx, response, case):
        """On intake, `reported_at` may be neither before 2000 nor in the future: bounds of a date-time a
        static document cannot state. A schema-valid intake refused for `reported_at` alone passes only
        when the instant sent really lies outside them."""
        meta = case.meta
        body = response.json() if response.status_code == 422 else {}
        if meta is None or not meta.generation.mode.is_positive or set(body.get("errors", {})) != {"reported_at"}:
            return positive(ctx, response, case)
        sent = datetime.fromisoformat(case.body["reported_at"])
        assert sent < EARLIEST_REPORT or sent > datetime.now(timezone.utc), \
            f"reported_at {sent.isoformat()} is within bounds and was refused: {response.text}"
        return None

    def periods_run_forwards(ctx, response, case):
        """A period's `to` may not come before its `from`: a relation between two parameters a static
        document cannot state. A refusal naming `to` alone passes only when the period really runs backwards."""
        meta = case.meta
        body = response.json() if response.status_code == 422 else {}
        if meta is None or not meta.generation.mode.is_positive or set(body.get("errors", {})) != {"to"}:
            return positive(ctx, response, case)
        query = case.query or {}
        assert str(query.get("to")) < str(query.get("from")), f"{query} runs forwards and was refused: {response.text}"
        return None

    others = [c for c in everything if c is not positive]
    return (everything, others + [form_refusals_are_the_task_forms], others + [reported_at_bounds_are_the_servers],
            others + [periods_run_forwards])


@pytest.fixture
def contract_app(db_url, clock):
    from app import create_app, db, runtime_of
    from engine.services.processes import deploy_paths

    app = create_app({"SQLALCHEMY_DATABASE_URI": db_url, "TESTING": True, **LIMITS})
    deploy_paths(runtime_of(app), None, "tests")
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.mark.slow
def test_every_check_of_schemathesis_passes_on_every_operation(contract_app):
    from engine.services.seed import seed_demo
    from tests.api_support import ApiClient

    client = contract_app.test_client()
    from engine.services.heartbeat import beat

    tokens = {u["username"]: u["token"] for u in seed_demo(contract_app.extensions["dispute_runtime"])["users"]}
    beat(contract_app.extensions["dispute_runtime"], "schemathesis")  # a timer worker beats: /readyz is 200
    api = ApiClient(client, tokens)
    case_no, task = api.at_signing()
    real = {"case_no": case_no, "task_id": task["id"]}
    headers = api.headers("yjp_acceptor")
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", contract_app)
    everything, on_complete, on_intake, on_period = _all_checks(client, headers)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 16
    for operation in operations:
        checks = {COMPLETE: on_complete, INTAKE: on_intake, **{label: on_period for label in PERIODS}}.get(
            operation.label, everything)
        params = {p.name for p in operation.path_parameters}
        real_ids = {k: v for k, v in real.items() if k in params}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for ids in ([{}, real_ids] if real_ids and mode is GenerationMode.POSITIVE else [{}]):
                _run(operation, mode, ids, headers, checks)


def _run(operation, mode, ids: dict, headers: dict, checks: list) -> None:
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def call(case):
        if ids:
            case.path_parameters = {**case.path_parameters, **ids}
        if mode is GenerationMode.POSITIVE and case.headers and "Idempotency-Key" in case.headers:
            # A key names one request: reusing a generated key for another request is rightly a 422
            # (tests/test_idempotency.py); schema-valid requests each get a key of their own.
            case.headers["Idempotency-Key"] = uuid.uuid4().hex
        case.call_and_validate(headers=headers, checks=checks)

    try:
        call()
    except Unsatisfiable:
        # An operation with no parameters and no body has nothing a request could break.
        assert mode is GenerationMode.NEGATIVE, operation.label
