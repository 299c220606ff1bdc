"""One error body everywhere: {"code", "message", "errors"}; domain errors mapped once."""
from __future__ import annotations

import logging

from flask import jsonify
from werkzeug.exceptions import HTTPException

from engine.errors import CaseError

log = logging.getLogger(__name__)


def init_app(app):
    @app.errorhandler(CaseError)
    def _case_error(exc: CaseError):
        if exc.status >= 500:
            log.error("case error: %s", exc.message, exc_info=exc)
        return jsonify(exc.to_dict()), exc.status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        body = {"code": (exc.name or "error").lower().replace(" ", "_"), "message": exc.description, "errors": {}}
        data = getattr(exc, "data", None)
        if isinstance(data, dict) and "messages" in data:
            body["errors"] = data["messages"]
        return jsonify(body), exc.code

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unexpected error")
        return jsonify({"code": "internal_error", "message": "an unexpected error occurred", "errors": {}}), 500
