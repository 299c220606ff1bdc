"""What the OpenAPI document declares beyond the marshmallow schemas: the server's own rules.

- Every string a request carries must be storable text (no NUL, no lone
  surrogate: `api.schemas.RequestSchema` refuses both), declared as a
  `pattern` on each string field of a request schema.
- An intake's `category`, and the statistics' `category` filter, is a key of
  `routing.toml` (read at start): a query field marks itself with
  `metadata={"routing_category": True}` and the converter gives it the enum.
- A task's `data` is the form of one of the deployed user tasks (the
  `field.*` properties in the BPMN, `engine.rules.forms`): the document
  lists them as `anyOf`, refreshed from the deployed definitions whenever
  the document is fetched, so a deployment shows at once. Which of them
  applies depends on the task: `GET /api/v1/tasks/{task_id}` lists its form.
"""
from __future__ import annotations

from flask import request
from marshmallow import fields

from api.auth import runtime
from api.schemas import RequestSchema
from engine.rules.forms import STORABLE, json_schemas
from engine.services.processes import deployed_forms


def _storable_strings(self, field, **_kwargs) -> dict:
    """apispec attribute function: the storable-text pattern on request strings without a pattern."""
    owner = field.parent.parent if isinstance(field.parent, (fields.List, fields.Tuple)) else field.parent
    if isinstance(field, fields.String) and isinstance(owner, RequestSchema) and not field.dump_only:
        if not any(getattr(v, "regex", None) is not None for v in field.validators):
            return {"pattern": STORABLE}
    return {}


def _routing_categories(categories: list[str]):
    def enum_of_categories(self, field, **_kwargs) -> dict:
        """apispec attribute function: the categories of routing.toml on a field marked `routing_category`."""
        return {"enum": categories} if field.metadata.get("routing_category") else {}
    return enum_of_categories


def before_registration(app, api) -> None:
    converter = api.ma_plugin.converter
    converter.add_attribute_function(_storable_strings)
    converter.add_attribute_function(_routing_categories(sorted(app.extensions["dispute_runtime"].tables.routes)))


def _forms_schema(rt) -> dict:
    variants, seen = [], set()
    for key, form in deployed_forms(rt).items():
        for schema in json_schemas(form):
            marker = repr(sorted(schema.items(), key=str))
            if marker not in seen:
                seen.add(marker)
                variants.append({**schema, "title": key})
    described = {"description": "the task's form fields: one of the forms below, the task's own (listed by "
                                "GET /api/v1/tasks/{task_id}); any other is a 422 naming each bad field"}
    return {"anyOf": variants, **described} if variants else {"type": "object", **described}


def after_registration(app, api) -> None:
    schemas = api.spec.components.schemas
    categories = sorted(app.extensions["dispute_runtime"].tables.routes)
    schemas["IntakeIn"]["properties"]["category"]["enum"] = categories

    @app.before_request
    def _declare_forms():
        if request.endpoint == "api-docs.openapi_json":
            schemas["CompleteIn"]["properties"]["data"] = _forms_schema(runtime())
