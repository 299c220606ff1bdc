"""Open311 GeoReport v2 as use cases: the category catalogue as services, cases as requests.

Every category of `processes/routing.toml` is a service (`service_code` the
category key). Its definition lists, as attributes, the intake-form fields
GeoReport has no parameter of its own for (`engine.rules.intake`). A POSTed
request becomes a case through `start_case` — placed by its coordinates
(`engine.rules.grids`), with the client system's channel — and is tied to the
client, a token and its media URL (`CaseSource`). GET answers only requests
that came in through Open311, and never any personal data: status open or
closed, the unified reply as status notes, the unit holding the case, the
working-day deadline of its most urgent open step as the expected time.

Input problems raise `Open311Error` (status and description); the API renders
the spec's array of errors.
"""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone

from marshmallow import fields as mfields, validate as mvalidate
from sqlalchemy import func, select

from engine import clock
from engine.errors import CaseError, InvalidInput
from engine.rules.intake import IntakeSchema, LocationSchema, ReporterSchema
from engine.rules.status import CaseStatus, TaskRowState
from engine.services.cases import start_case
from engine.services.clients import Client
from engine.store.client_models import ApiClient, CaseSource
from engine.store.models import Case, CaseTask

MAX_RESULTS = 1000
MAX_IDS = 100
DEFAULT_SPAN = timedelta(days=90)
# Intake-form fields offered as attributes: (attribute code, schema, field name, description).
ATTRIBUTES = (
    ("title", IntakeSchema, "title", "事项标题（不填则取服务名称与描述开头）"),
    ("grid", LocationSchema, "grid", "网格编号（如 YJP-03）：不填则按经纬度确定所属网格与社区"),
    ("id_no", ReporterSchema, "id_no", "反映人身份证号（仅办理单位可见，不对外公开）"),
)


class Open311Error(CaseError):
    """A GeoReport request the server refuses: `status` is the HTTP code, the message its description."""

    code = "open311_error"

    def __init__(self, status: int, description: str):
        super().__init__(description)
        self.status = status
        self.descriptions = [description]


class Open311Invalid(Open311Error):
    def __init__(self, descriptions: list[str]):
        super().__init__(400, descriptions[0])
        self.descriptions = descriptions


# -- services -----------------------------------------------------------------------------


def _group(rt, route) -> str:
    if route.unit.startswith("@"):
        return "街道办事处"
    unit = rt.tables.units.get(route.unit)
    return unit.name if unit else route.unit


def list_services(rt) -> list[dict]:
    """Every category as a GeoReport service."""
    return [{"service_code": r.category, "service_name": r.name,
             "description": f"{r.name}：社区首接受理，{_group(rt, r)}承办", "metadata": True, "type": "realtime",
             "keywords": f"{r.category}, {r.time_limit_class}", "group": _group(rt, r)}
            for r in rt.tables.routes.values()]


def _attribute(order: int, code: str, schema, name: str, description: str) -> dict:
    field = schema().fields[name]
    datatype, values, notes = "string", [], []
    if isinstance(field, mfields.Float):
        datatype = "number"
    for v in field.validators:
        if isinstance(v, mvalidate.OneOf):
            datatype, values = "singlevaluelist", [{"key": c, "name": c} for c in v.choices]
        elif isinstance(v, mvalidate.Length) and v.max:
            notes.append(f"at most {v.max} characters")
            if v.max > 300:
                datatype = "text"
        elif isinstance(v, mvalidate.Regexp):
            notes.append(v.error)
    return {"variable": True, "code": code, "datatype": datatype, "required": False,
            "datatype_description": "; ".join(notes) or None, "order": order, "description": description,
            "values": values}


def service_definition(rt, service_code: str) -> dict:
    if service_code not in rt.tables.routes:
        raise Open311Error(404, f"service_code {service_code} was not found")
    return {"service_code": service_code,
            "attributes": [_attribute(i + 1, *spec) for i, spec in enumerate(ATTRIBUTES)]}


# -- POST a request -----------------------------------------------------------------------


def _number(params: dict, name: str) -> float | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise Open311Invalid([f"{name} must be a number"]) from None


def _intake(rt, params: dict, attributes: dict) -> dict:
    bad = sorted(k for k, v in {**params, **attributes}.items() if "\x00" in str(k) + str(v))
    if bad:
        raise Open311Invalid([f"{k} must be text without NUL characters" for k in bad])
    code = params.get("service_code")
    if not code:
        raise Open311Invalid(["service_code was not provided"])
    if code not in rt.tables.routes:
        raise Open311Invalid([f"service_code {code} is not a service of this server (see services.json)"])
    unknown = sorted(set(attributes) - {a[0] for a in ATTRIBUTES})
    if unknown:
        raise Open311Invalid([f"attribute[{a}] is not an attribute of service {code}" for a in unknown])
    lat, lon = _number(params, "lat"), _number(params, "long")
    address = params.get("address_string") or (f"address_id {params['address_id']}" if params.get("address_id")
                                               else None)
    if address is None and (lat is None or lon is None):
        raise Open311Invalid(["a location is required: lat and long, address_string or address_id"])
    description = params.get("description") or ""
    name = " ".join(p for p in (params.get("first_name"), params.get("last_name")) if p) or "匿名"
    title = attributes.get("title") or f"{rt.tables.routes[code].name}：{description[:40]}"
    return {"title": title, "description": description, "category": code,
            "reporter": {"name": name, "phone": params.get("phone") or "", "id_no": attributes.get("id_no") or None},
            "location": {"address": address or f"{lat},{lon}", "lat": lat, "lon": lon,
                         "grid": attributes.get("grid") or None}}


def _flat(errors: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in errors.items():
        name = {"location.lon": "long", "location.lat": "lat", "location.address": "address_string",
                "reporter.phone": "phone", "reporter.name": "first_name", "reporter.id_no": "attribute[id_no]",
                "location.grid": "attribute[grid]", "title": "attribute[title]"}.get(prefix + key, prefix + key)
        if isinstance(value, dict):
            out += _flat(value, f"{prefix}{key}.")
        else:
            out += [f"{name}: {m}" for m in (value if isinstance(value, list) else [value])]
    return out


def post_request(rt, client: Client, params: dict, attributes: dict) -> list[dict]:
    """Register a GeoReport request as a case; the answer is the spec's one-element list."""
    intake = dict(_intake(rt, params, attributes), channel=client.channel)
    token = secrets.token_urlsafe(16)
    source = {"client_id": client.id, "external_ref": None, "token": token, "media_url": params.get("media_url")}
    try:
        case = start_case(rt, intake, f"open311:{client.name}", source=source)
    except InvalidInput as exc:
        raise Open311Invalid(_flat(exc.errors) or [exc.message]) from exc
    community = rt.tables.units.get(case["community"])
    return [{"service_request_id": case["case_no"], "token": token,
             "service_notice": f"已受理，由{community.name if community else case['community']}首接受理",
             "account_id": params.get("account_id") or None}]


# -- GET requests -------------------------------------------------------------------------


def _iso(rt, value: datetime | None) -> str | None:
    return value.astimezone(rt.tz).isoformat(timespec="seconds") if value is not None else None


def _when(name: str, raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise Open311Invalid([f"{name} must be a w3c date-time such as 2026-01-01T00:00:00Z"]) from None
    if value.tzinfo is None:
        raise Open311Invalid([f"{name} must carry a time zone (Z or ±hh:mm)"])
    return value


def _csv(raw: str | None) -> list[str]:
    return [p.strip() for p in (raw or "").split(",") if p.strip()]


def _request_view(rt, case: Case, source: CaseSource, expected: datetime | None) -> dict:
    route = rt.tables.routes.get(case.category)
    unit_code = case.current_unit or case.reply_unit or case.routed_unit or case.community_code
    unit = rt.tables.units.get(unit_code)
    closed = case.status == CaseStatus.CLOSED.value
    return {"service_request_id": case.case_no, "status": "closed" if closed else "open",
            "status_notes": case.reply_text, "service_name": route.name if route else case.category,
            "service_code": case.category, "description": case.description,
            "agency_responsible": unit.name if unit else unit_code, "service_notice": None,
            "requested_datetime": _iso(rt, case.created_at), "updated_datetime": _iso(rt, case.updated_at),
            "expected_datetime": None if closed else _iso(rt, expected), "address": case.address,
            "address_id": None, "zipcode": None, "lat": case.lat, "long": case.lon, "media_url": source.media_url}


def _query(rt, session, stmt) -> list[dict]:
    rows = session.execute(stmt.join(ApiClient, ApiClient.id == CaseSource.client_id)
                           .where(ApiClient.kind == "open311").order_by(Case.created_at.desc(), Case.id.desc())
                           .limit(MAX_RESULTS)).all()
    ids = [c.id for c, _ in rows]
    due = dict(session.execute(select(CaseTask.case_id, func.min(CaseTask.due_at))
                               .where(CaseTask.case_id.in_(ids), CaseTask.state == TaskRowState.READY.value)
                               .group_by(CaseTask.case_id)).all()) if ids else {}
    return [_request_view(rt, c, s, due.get(c.id)) for c, s in rows]


def _base():
    return select(Case, CaseSource).join(CaseSource, CaseSource.case_id == Case.id)


def list_requests(rt, params: dict) -> list[dict]:
    """GET requests: by id (overriding the rest), else by service code, status and a span of ≤ 90 days."""
    ids = _csv(params.get("service_request_id"))
    if len(ids) > MAX_IDS:
        raise Open311Invalid([f"at most {MAX_IDS} service_request_id values at once"])
    stmt = _base()
    if ids:
        stmt = stmt.where(Case.case_no.in_(ids))
    else:
        codes, statuses = _csv(params.get("service_code")), _csv(params.get("status"))
        bad = [c for c in codes if c not in rt.tables.routes]
        if bad:
            raise Open311Invalid([f"service_code {c} is not a service of this server" for c in bad])
        if any(s not in ("open", "closed") for s in statuses):
            raise Open311Invalid(["status must be open, closed or both (comma separated)"])
        start, end = _when("start_date", params.get("start_date")), _when("end_date", params.get("end_date"))
        end = end or ((start + DEFAULT_SPAN) if start else clock.now())
        start = start or end - DEFAULT_SPAN
        if end < start or end - start > DEFAULT_SPAN:
            raise Open311Invalid(["start_date and end_date may not span more than 90 days, nor be reversed"])
        stmt = stmt.where(Case.created_at >= start.astimezone(timezone.utc), Case.created_at <= end)
        if codes:
            stmt = stmt.where(Case.category.in_(codes))
        if set(statuses) == {"open"}:
            stmt = stmt.where(Case.status != CaseStatus.CLOSED.value)
        elif set(statuses) == {"closed"}:
            stmt = stmt.where(Case.status == CaseStatus.CLOSED.value)
    with rt.db.read() as session:
        return _query(rt, session, stmt)


def get_request(rt, request_id: str) -> list[dict]:
    with rt.db.read() as session:
        found = _query(rt, session, _base().where(Case.case_no == request_id))
    if not found:
        raise Open311Error(404, f"service request {request_id} was not found")
    return found


def token_lookup(rt, token: str) -> list[dict]:
    with rt.db.read() as session:
        case_no = session.scalar(select(Case.case_no).join(CaseSource, CaseSource.case_id == Case.id)
                                 .where(CaseSource.token == token))
    if case_no is None:
        raise Open311Error(404, f"token {token} was not found")
    return [{"service_request_id": case_no, "token": token}]
