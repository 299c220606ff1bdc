"""Bearer-token authentication for the blueprints behind it, and the caller of a request.

A blueprint that needs a caller registers `require_token` as its
`before_request` hook: the token is checked before its arguments are parsed,
so a request without a valid one is a 401 whatever else is wrong with it
(or a 429 once its address has had too many tokens refused).
"""
from __future__ import annotations

from flask import current_app, g, request

from api.limits import FAILED_SIGNIN
from engine.errors import Unauthorized
from engine.rules.access import Caller
from engine.services.org import authenticate


def runtime():
    return current_app.extensions["dispute_runtime"]


def require_token() -> None:
    """The caller, or 401; a refused credential spends the address's failed sign-in budget (api.limits)."""
    presented = bool(request.headers.get("Authorization", "").strip())
    if presented:
        FAILED_SIGNIN.check()
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    try:
        g.caller = authenticate(runtime(), token.strip() if scheme.lower() == "bearer" else None)
    except Unauthorized:
        if presented:
            FAILED_SIGNIN.spend()
        raise


def caller() -> Caller:
    return g.caller
