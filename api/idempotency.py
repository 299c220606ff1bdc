"""The Idempotency-Key header on every state-changing request, for every blueprint at once.

`api.parsing.Blueprint` wraps each view it registers with `idempotent`: a
POST, PUT, PATCH or DELETE that carries `Idempotency-Key: <1–255 visible
ASCII characters>` runs through `engine.services.idempotency.run_once`,
which executes the view once in one transaction with the stored response,
and answers a repeat with that response and `Idempotent-Replayed: true`.
Requests without the header are untouched. Views need nothing of their own.

Keys belong to the caller: the authenticated user (`g.caller.username`), a
client system whose authentication sets `g.idempotency_owner`, or else the
anonymous client's address. The request hash covers the method, the path, the
query string and the body in canonical form (JSON with sorted keys; form
fields sorted, uploaded files by name and SHA-256), so key order or
whitespace in a retried JSON body does not count as a different request.
"""
from __future__ import annotations

import functools
import hashlib
import json
import re

from apispec import BasePlugin
from flask import current_app, g, request

from api.auth import runtime
from engine.errors import InvalidInput
from engine.services.idempotency import DEFAULT_TTL, StoredResponse, run_once

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
KEPT_HEADERS = ("Content-Type", "Location", "ETag")
VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def owner() -> str:
    """Whose key space the request's key is in."""
    explicit = g.get("idempotency_owner")
    if explicit:
        return str(explicit)
    name = getattr(g.get("caller"), "username", None)
    return f"user:{name}" if name else f"anonymous:{request.remote_addr}"


def _canonical_body() -> bytes:
    if request.files or request.form:
        files = []
        for name, upload in request.files.items(multi=True):
            files.append([name, upload.filename, hashlib.sha256(upload.read()).hexdigest()])
            upload.stream.seek(0)
        return json.dumps({"form": sorted(request.form.items(multi=True)), "files": sorted(files)}).encode()
    raw = request.get_data(cache=True)
    if request.is_json:
        try:
            return b"json:" + json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
        except (ValueError, RecursionError):
            pass  # malformed: the view answers 400, and the raw bytes stand for the request
    return b"raw:" + raw


def request_hash() -> str:
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.path.encode(),
                 json.dumps(sorted(request.args.items(multi=True))).encode(), _canonical_body()):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def _key() -> str | None:
    key = request.headers.get(HEADER)
    if key is None or request.method not in METHODS:
        return None
    if not VALID_KEY.match(key):
        raise InvalidInput(f"the {HEADER} header must be 1 to 255 visible ASCII characters",
                           errors={HEADER: ["must be 1 to 255 visible ASCII characters (a UUID is a good key)"]})
    return key


def idempotent(view):
    """Wrap a view: with an Idempotency-Key, it runs once per caller and key, and repeats get the stored response."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        key = _key()
        if key is None:
            return view(*args, **kwargs)

        def action() -> StoredResponse:
            response = current_app.make_response(view(*args, **kwargs))
            headers = {h: response.headers[h] for h in KEPT_HEADERS if h in response.headers}
            return StoredResponse(response.status_code, headers, response.get_data(as_text=True))

        stored = run_once(runtime(), owner(), key, request_hash(), request.method, request.path, action,
                          current_app.config.get("IDEMPOTENCY_KEY_TTL", DEFAULT_TTL))
        response = current_app.response_class(stored.body, stored.status, stored.headers)
        if stored.replayed:
            response.headers[REPLAYED] = "true"
        return response

    return wrapper


PARAMETER = {
    "in": "header", "name": HEADER, "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
    "description": "Makes a retry safe: the first request with this key (per caller) is executed and its "
                   "response stored; a repeat with the same request gets that response again, marked "
                   f"`{REPLAYED}: true`, without acting again; the same key with a different request is a "
                   "422 idempotency_key_reused; while the first is still running, a 409 idempotency_in_progress. "
                   "Keys expire after 24 hours.",
}


class IdempotencyDoc(BasePlugin):
    """Documents the Idempotency-Key header on every state-changing operation of the OpenAPI document."""

    def operation_helper(self, path=None, operations=None, **kwargs):
        for method, operation in (operations or {}).items():
            if method.upper() in METHODS:
                operation.setdefault("parameters", []).append(dict(PARAMETER))
