"""One error body everywhere: {"code", "message", "errors"}; domain errors mapped once.

Domain errors (`engine.errors.CaseError`) carry their own code and status.
HTTP errors raised by Flask, webargs and flask-smorest (bad JSON, validation,
unknown routes, wrong methods) get the same body: webargs' per-location
messages ({"json": {"title": [...]}}) are flattened to {"title": [...]}, and
nested fields are named by their path ({"reporter.phone": [...]}), so
`errors` always maps a field name to a list of messages. Anything else is a
500 with no detail, logged with its traceback, unless the database is away
(`engine.store.db.is_unavailable`): that is a 503 `database_unavailable` with
a Retry-After header and one log line, whatever raised it.
"""
from __future__ import annotations

import logging

from flask import jsonify, request
from werkzeug.exceptions import HTTPException

from engine.errors import CaseError, DatabaseUnavailable
from engine.store.db import DEFAULT_RETRY_AFTER, is_unavailable, unavailable_reason

log = logging.getLogger(__name__)

LOCATIONS = ("json", "query", "querystring", "path", "view_args", "headers", "form", "files", "cookies")
MESSAGES = {
    400: ("malformed_request", "the request body is not valid JSON"),
    422: ("invalid_input", "the request has invalid fields"),
    413: ("too_large", "the request body is larger than the server accepts"),
    429: ("rate_limited", "too many requests from this address; try again after Retry-After seconds"),
}


def _flatten(messages) -> dict:
    if not isinstance(messages, dict):
        return {"_schema": messages if isinstance(messages, list) else [str(messages)]}
    out: dict = {}
    for key, value in messages.items():
        if key in LOCATIONS and isinstance(value, dict):
            out.update(value)
        else:
            out[key] = value
    return out


def dotted(errors: dict, prefix: str = "") -> dict:
    """{"reporter": {"phone": ["..."]}} → {"reporter.phone": ["..."]}."""
    out: dict = {}
    for key, value in errors.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(dotted(value, name))
        else:
            out[name] = [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
    return out


def http_error_body(exc: HTTPException) -> dict:
    code, message = MESSAGES.get(exc.code, ((exc.name or "error").lower().replace(" ", "_"), exc.description))
    data = getattr(exc, "data", None)
    errors = dotted(_flatten(data["messages"])) if isinstance(data, dict) and "messages" in data else {}
    return {"code": code, "message": message, "errors": errors}


def init_app(app):
    @app.errorhandler(CaseError)
    def _case_error(exc: CaseError):
        if isinstance(exc, DatabaseUnavailable):
            log.warning("503 database unavailable: %s %s (%s)", request.method, request.path,
                        exc.reason or unavailable_reason(exc))
        elif exc.status >= 500:
            log.error("case error: %s", exc.message, exc_info=exc)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        if getattr(exc, "retry_after", None):
            headers["Retry-After"] = str(exc.retry_after)
        body = exc.to_dict()
        body["errors"] = dotted(body["errors"])
        return jsonify(body), exc.status, headers

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        headers = {k: v for k, v in exc.get_headers() if k.lower() in ("allow", "retry-after")}
        return jsonify(http_error_body(exc)), exc.code, headers

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if is_unavailable(exc):
            retry_after = app.extensions["dispute_runtime"].db.retry_after if "dispute_runtime" in app.extensions \
                else DEFAULT_RETRY_AFTER
            return _case_error(DatabaseUnavailable(retry_after=retry_after, reason=unavailable_reason(exc)))
        log.exception("unexpected error")
        return jsonify({"code": "internal_error", "message": "an unexpected error occurred", "errors": {}}), 500
