"""The HTTP API: a thin layer over the engine's service functions.

One flask-smorest blueprint per resource; each view loads the request with a
marshmallow schema, calls one service function and dumps the result. The
OpenAPI 3 document is served at /api/openapi.json and Swagger UI at /api/docs
(the page loads its script from a CDN; the document itself is self-contained).
"""
from __future__ import annotations

from flask_smorest import Api

from api.schemas import ErrorSchema

DEFAULTS = {
    "API_TITLE": "社会矛盾联动化解 API (linked resolution of social disputes)",
    "API_VERSION": "1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "docs",
    "OPENAPI_SWAGGER_UI_URL": "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/",
    "API_SPEC_OPTIONS": {
        "security": [{"bearerAuth": []}],
        "info": {"description": "Every endpoint but /healthz, the OpenAPI document, its UI and public "
                                "tracking needs 'Authorization: Bearer <token>' (`flask users token NAME`)."},
    },
}


MAX_CONTENT_LENGTH = 4 * 1024 * 1024  # uploads of BPMN files (2 MB each at most); JSON bodies are far smaller


class DisputeApi(Api):
    """flask-smorest's Api, documenting and producing this application's one error body."""

    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self):
        pass  # api.errors registers the one handler for every error


def init_app(app):
    from api import audit, cases, comments, errors, health, outbox, processes, supervision, tasks, track, units

    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)
    if app.config.get("MAX_CONTENT_LENGTH") is None:  # Flask's default is None: no limit at all
        app.config["MAX_CONTENT_LENGTH"] = MAX_CONTENT_LENGTH
    api = DisputeApi(app)
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer",
                                                       "description": "an API token from `flask users token`"})
    for module in (health, cases, audit, comments, tasks, processes, supervision, units, track, outbox):
        api.register_blueprint(module.blp)
    errors.init_app(app)
    app.extensions["dispute_api"] = api
