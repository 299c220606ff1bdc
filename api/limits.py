"""Rate limits (Flask-Limiter): one `limiter`, initialised with the app in `api.init_app`.

Storage is `RATELIMIT_STORAGE_URI` (default `memory://`, per process; use
`redis://127.0.0.1:6379` when several processes serve). Machine clients are
limited per API key (`api_key_id`), so one noisy system cannot starve another.
"""
from __future__ import annotations

import hashlib

from flask import request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

limiter = Limiter(key_func=get_remote_address)


def api_key_of_request() -> str | None:
    """The API key a machine client sent: `X-Api-Key` header, else the `api_key` form or query field."""
    return request.headers.get("X-Api-Key") or request.form.get("api_key") or request.args.get("api_key")


def api_key_id() -> str:
    """The rate-limit bucket: a digest of the API key (never the key itself), else the client address."""
    key = api_key_of_request()
    return "key:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32] if key \
        else "ip:" + get_remote_address()
