"""Bearer-token authentication for the blueprints behind it, and the caller of a request.

A blueprint that needs a caller registers `require_token` as its
`before_request` hook: the token is checked before its arguments are parsed,
so a request without a valid one is a 401 whatever else is wrong with it.
"""
from __future__ import annotations

from flask import current_app, g, request

from engine.rules.access import Caller
from engine.services.org import authenticate


def runtime():
    return current_app.extensions["dispute_runtime"]


def require_token() -> None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    g.caller = authenticate(runtime(), token.strip() if scheme.lower() == "bearer" else None)


def caller() -> Caller:
    return g.caller
