"""Rate limits: one Flask-Limiter for the API, and budgets of events counted only when they happen.

`limiter` is the application's one `flask_limiter.Limiter`, keyed by client
address; views take limits from it as decorators (public tracking:
`@limiter.limit(config("RATELIMIT_TRACKING"))`). A `Budget` counts events
that are only known once a request has been handled, in the same storage:
`FAILED_SIGNIN` is spent by every request whose bearer token is refused, and
once spent, every authenticated request from that address is refused until
the window ends (also a valid token: a lockout that let the right token
through would still answer the guesser). Both answer 429 `rate_limited`
with `Retry-After` (api.errors). Machine clients are limited per API key
(`api_key_id`), so one noisy system cannot starve another.

Storage: in memory (per process) unless `REDIS_URL` (or
`RATELIMIT_STORAGE_URI`) names a shared one. Settings, each from the app's
config, else the environment, else the default:

  RATELIMIT_ENABLED        "1" / "0"            [1]
  RATELIMIT_STORAGE_URI    a `limits` storage    [$REDIS_URL or memory://]
  RATELIMIT_TRACKING       per client address    [20 per minute]
  RATELIMIT_FAILED_SIGNIN  per client address    [10 per minute]
  RATELIMIT_KEY_PREFIX     prefix of every key   [none; set it when instances share a storage]

The limiter is a process-wide extension (Flask-Limiter's design): the app
initialised last owns its storage.
"""
from __future__ import annotations

import hashlib
import math
import os
import time

from flask import current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse
from werkzeug.exceptions import TooManyRequests

from api.schemas import ErrorSchema

limiter = Limiter(key_func=get_remote_address, headers_enabled=True, strategy="fixed-window")

DEFAULTS = {
    "RATELIMIT_TRACKING": "20 per minute",
    "RATELIMIT_FAILED_SIGNIN": "10 per minute",
}


RETRY_STATUSES = frozenset({409, 429, 503})
RETRY_AFTER = {"Retry-After": {"description": "seconds until this address may try again",
                               "schema": {"type": "integer", "minimum": 1}}}


def documented_429(blp):
    """The 429 a limited view may answer, for its OpenAPI entry (`@documented_429(blp)`)."""
    return blp.alt_response(429, schema=ErrorSchema, headers=RETRY_AFTER,
                            description="too many requests from this address (`rate_limited`)")


def config(key: str):
    """A limit read from the app's config when the request comes (for `limiter.limit`)."""
    return lambda: current_app.config[key]


class RateLimited(TooManyRequests):
    """429 with the seconds until the client may try again (api.errors keeps the header)."""


class Budget:
    """A per-client-address allowance of some event, spent only when the event happens."""

    def __init__(self, scope: str, config_key: str):
        self.scope = scope
        self.config_key = config_key

    def _args(self):
        prefix = current_app.config.get("RATELIMIT_KEY_PREFIX")
        keys = (prefix, self.scope, get_remote_address()) if prefix else (self.scope, get_remote_address())
        return parse(current_app.config[self.config_key]), *keys

    def check(self) -> None:
        """RateLimited if this address has spent its allowance in the current window."""
        if not limiter.enabled:
            return
        item, *args = self._args()
        if not limiter.limiter.test(item, *args):
            reset_at = limiter.limiter.get_window_stats(item, *args).reset_time
            raise RateLimited(f"too many {self.scope.replace('_', ' ')}s from this address; "
                              f"try again later ({item})", retry_after=max(1, math.ceil(reset_at - time.time())))

    def spend(self) -> None:
        if limiter.enabled:
            item, *args = self._args()
            limiter.limiter.hit(item, *args)


FAILED_SIGNIN = Budget("failed_sign_in", "RATELIMIT_FAILED_SIGNIN")


def api_key_of_request() -> str | None:
    """The API key a machine client sent: `X-Api-Key` header, else the `api_key` form or query field."""
    return request.headers.get("X-Api-Key") or request.form.get("api_key") or request.args.get("api_key")


def api_key_id() -> str:
    """The rate-limit bucket: a digest of the API key (never the key itself), else the client address."""
    key = api_key_of_request()
    return "key:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32] if key \
        else "ip:" + get_remote_address()


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() not in ("0", "false", "no", "off", "")


def init_app(app) -> None:
    app.config.setdefault("RATELIMIT_ENABLED", _env_flag("RATELIMIT_ENABLED", True))
    app.config.setdefault("RATELIMIT_STORAGE_URI", os.environ.get("RATELIMIT_STORAGE_URI")
                          or os.environ.get("REDIS_URL") or "memory://")
    app.config.setdefault("RATELIMIT_KEY_PREFIX", os.environ.get("RATELIMIT_KEY_PREFIX", ""))
    for key, default in DEFAULTS.items():
        app.config.setdefault(key, os.environ.get(key) or default)
        try:
            parse(app.config[key])
        except ValueError as exc:
            raise ValueError(f"{key} = {app.config[key]!r} is not a rate limit (e.g. '20 per minute')") from exc

    @app.after_request
    def _retry_after_only_when_refused(response):
        # Registered before the limiter's own hook, so it runs after it: Flask-Limiter sets
        # Retry-After on every limited response; it means something only when the request was
        # refused for a while: 429 (rate limited), 503 (database unavailable), 409 idempotency_in_progress.
        if response.status_code not in RETRY_STATUSES:
            response.headers.pop("Retry-After", None)
        return response

    limiter.init_app(app)
