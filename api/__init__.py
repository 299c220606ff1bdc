"""The HTTP API: a thin layer over the engine's service functions.

One flask-smorest blueprint per resource; each view loads the request with a
marshmallow schema, calls one service function and dumps the result. The
OpenAPI 3 document is served at /api/openapi.json and Swagger UI at /api/docs,
its assets served locally (api.docs), so it works on an offline network.
"""
from __future__ import annotations

import importlib

from flask_smorest import Api

from api.docs import ASSETS_URL
from api.schemas import ErrorSchema

DEFAULTS = {
    "API_TITLE": "社会矛盾联动化解 API (linked resolution of social disputes)",
    "API_VERSION": "1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "docs",
    "OPENAPI_SWAGGER_UI_URL": ASSETS_URL,
    "OPENAPI_SWAGGER_UI_CONFIG": {"validatorUrl": None},
    "API_SPEC_OPTIONS": {
        "security": [{"bearerAuth": []}],
        "info": {"description": "Every endpoint but /healthz, /readyz, /metrics, the OpenAPI document, its UI and public "
                                "tracking needs 'Authorization: Bearer <token>' (`flask users token NAME`). Every "
                                "text a request carries must be storable: a NUL character or a lone surrogate "
                                "escape (\\ud800) anywhere is a 422 naming the field (the pattern on each "
                                "string says NUL; no portable pattern can name a lone surrogate)."},
    },
}


MAX_CONTENT_LENGTH = 4 * 1024 * 1024  # uploads of BPMN files (2 MB each at most); JSON bodies are far smaller


class DisputeApi(Api):
    """flask-smorest's Api, documenting and producing this application's one error body."""

    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self):
        pass  # api.errors registers the one handler for every error


# The blueprint modules (api/<name>.py, each with a `blp`), one a line, in the order of the OpenAPI document.
BLUEPRINTS = (
    "health",
    "cases",
    "audit",
    "comments",
    "tasks",
    "processes",
    "supervision",
    "statistics",
    "units",
    "track",
    "intake",
    "apikeys",
    "admin",
    "incidents",
    "outbox",
    "ops",
    "mediation",
    "assessments",
    "screening",
)


def init_app(app):
    from api import contract, docs, errors, limits, open311, ops, web
    from api.idempotency import IdempotencyDoc

    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)
    if app.config.get("MAX_CONTENT_LENGTH") is None:  # Flask's default is None: no limit at all
        app.config["MAX_CONTENT_LENGTH"] = MAX_CONTENT_LENGTH
    api = DisputeApi(app)
    api.spec.plugins.append(IdempotencyDoc())  # before the blueprints: it documents their operations
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer",
                                                       "description": "an API token from `flask users token`"})
    api.spec.components.security_scheme("apiKey", {"type": "apiKey", "in": "header", "name": "X-Api-Key",
                                                   "description": "a client system's key from `flask apikeys create`"})
    contract.before_registration(app, api)
    for name in BLUEPRINTS:
        api.register_blueprint(importlib.import_module(f"api.{name}").blp)
    contract.after_registration(app, api)
    app.register_blueprint(docs.blp)
    app.register_blueprint(open311.bp)  # GeoReport v2 fixes its own formats: not part of the OpenAPI document
    web.init_app(app)  # the console's HTML pages (api.web): not part of the OpenAPI document either
    errors.init_app(app)
    limits.init_app(app)
    ops.init_app(app)
    app.extensions["dispute_api"] = api
