"""The request parser behind every blueprint: webargs', hardened against JSON Python cannot hold.

Python's decoder raises more than `JSONDecodeError`: a number of more than
4300 digits is a `ValueError`, a deeply nested body a `RecursionError`.
Both are malformed input, so both become the same 400 as broken JSON; so
does nesting deeper than any request of this API needs.

The same Blueprint gives every view it registers the Idempotency-Key
behaviour (`api.idempotency`), so a new blueprint has it without a line of its own.
"""
from __future__ import annotations

import json

import flask
import flask_smorest
from webargs.flaskparser import FlaskParser

from api.idempotency import idempotent

MAX_DEPTH = 32


def _too_deep(value) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


class JsonParser(FlaskParser):
    def _raw_load_json(self, req):
        try:
            data = super()._raw_load_json(req)
        except json.JSONDecodeError:
            raise
        except (ValueError, RecursionError) as exc:
            self._handle_invalid_json_error(exc, req)
        if _too_deep(data):
            self._handle_invalid_json_error(ValueError("the JSON body is nested too deeply"), req)
        return data


class _IdempotentViews(flask.Blueprint):
    """Below flask-smorest in the MRO: it documents the view as written, Flask routes the wrapped one."""

    def add_url_rule(self, rule, endpoint=None, view_func=None, provide_automatic_options=None, **options):
        if view_func is not None:
            view_func = idempotent(view_func)
        super().add_url_rule(rule, endpoint, view_func, provide_automatic_options, **options)


class Blueprint(flask_smorest.Blueprint, _IdempotentViews):
    """flask-smorest's Blueprint with the hardened parser and Idempotency-Key on every state-changing view."""

    ARGUMENTS_PARSER = JsonParser()
