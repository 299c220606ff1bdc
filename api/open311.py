"""Open311 GeoReport v2 at /open311/v2/: services, service definitions, requests, tokens.

A plain Flask blueprint: the formats are fixed by the specification, so the
views render its JSON and XML themselves (`render`), and errors are the
spec's array of errors — JSON `[{"code": 400, "description": "..."}]`, XML
`<errors><error><code/><description/></error></errors>` — with the HTTP
status as the code. POST needs the `api_key` of a client system of kind
`open311` (`flask apikeys create`); GETs are public and carry no personal
data. Every view is rate limited per API key (per address without one).
"""
from __future__ import annotations

import json
import logging
import re
import xml.etree.ElementTree as ET

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import HTTPException

from api.auth import runtime
from api.limits import api_key_id, api_key_of_request, limiter
from engine.errors import CaseError, Unauthorized
from engine.services import open311
from engine.services.clients import authenticate_client

log = logging.getLogger(__name__)
bp = Blueprint("open311", __name__, url_prefix="/open311/v2")
FMT = "<any(json, xml):fmt>"
# The element name of each item of a list, by the list's own name (GeoReport's XML).
ITEMS = {"services": "service", "service_requests": "request", "attributes": "attribute", "values": "value",
         "errors": "error"}
ATTRIBUTE = re.compile(r"^attribute\[([^\]]{1,50})\]$")
DEFAULT_RATE_LIMIT = "60 per minute"


def _limit() -> str:
    return current_app.config.get("OPEN311_RATE_LIMIT", DEFAULT_RATE_LIMIT)


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fill(element: ET.Element, name: str, value) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            _fill(ET.SubElement(element, key), key, child)
    elif isinstance(value, list):
        for item in value:
            _fill(ET.SubElement(element, ITEMS.get(name, "item")), ITEMS.get(name, "item"), item)
    else:
        element.text = _text(value)


def render(data, fmt: str, root: str, status: int = 200) -> Response:
    """JSON as it is, or XML under `root` (lists of items named by ITEMS), UTF-8 with its declaration."""
    if fmt == "json":
        return Response(json.dumps(data, ensure_ascii=False), status, mimetype="application/json")
    element = ET.Element(root)
    _fill(element, root, data)
    body = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(element, encoding="unicode").encode("utf-8")
    return Response(body, status, content_type="text/xml; charset=utf-8")


def _errors(status: int, descriptions: list[str]) -> Response:
    fmt = (request.view_args or {}).get("fmt", "json")
    return render([{"code": status, "description": d} for d in descriptions], fmt, "errors", status)


@bp.errorhandler(CaseError)
def _case_error(exc: CaseError):
    if isinstance(exc, open311.Open311Error):
        return _errors(exc.status, exc.descriptions)
    if isinstance(exc, Unauthorized):  # GeoReport answers a missing or bad api_key with 403
        return _errors(403, ["api_key was not provided" if not api_key_of_request() else "api_key is not valid"])
    if exc.status >= 500:
        log.error("open311: %s", exc.message, exc_info=exc)
    return _errors(exc.status, [exc.message])


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    return _errors(exc.code or 500, [exc.description or exc.name])


@bp.errorhandler(Exception)
def _unexpected(exc: Exception):
    log.exception("open311: unexpected error")
    return _errors(500, ["an unexpected error occurred"])


@bp.get(f"/services.{FMT}")
@limiter.limit(_limit, key_func=api_key_id)
def services(fmt):
    return render(open311.list_services(runtime()), fmt, "services")


@bp.get(f"/services/<service_code>.{FMT}")
@limiter.limit(_limit, key_func=api_key_id)
def service_definition(service_code, fmt):
    return render(open311.service_definition(runtime(), service_code), fmt, "service_definition")


@bp.route(f"/requests.{FMT}", methods=["GET", "POST"])
@limiter.limit(_limit, key_func=api_key_id)
def requests_(fmt):
    if request.method == "GET":
        return render(open311.list_requests(runtime(), request.args.to_dict()), fmt, "service_requests")
    rt = runtime()
    client = authenticate_client(rt, api_key_of_request(), "open311")
    values = request.values.to_dict()
    attributes = {m.group(1): v for k, v in values.items() if (m := ATTRIBUTE.match(k))}
    return render(open311.post_request(rt, client, values, attributes), fmt, "service_requests", 201)


@bp.get(f"/requests/<request_id>.{FMT}")
@limiter.limit(_limit, key_func=api_key_id)
def request_(request_id, fmt):
    return render(open311.get_request(runtime(), request_id), fmt, "service_requests")


@bp.get(f"/tokens/<token>.{FMT}")
@limiter.limit(_limit, key_func=api_key_id)
def token(token, fmt):
    return render(open311.token_lookup(runtime(), token), fmt, "service_requests")
