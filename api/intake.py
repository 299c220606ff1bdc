"""/api/v1/intake: cases from integrated systems (12345, 12348, 110, the grid workers' app).

Authenticated by the system's own API key (`X-Api-Key`, kind `intake`), not
a user's token; the case carries the system's channel and its reference
(`external_ref`, the idempotency key): 201 with the new case, or 200 with the
same case when the reference is known already. Rate limited per key.
"""
from __future__ import annotations

from flask import current_app, g
from marshmallow import Schema, fields, validate

from api.auth import runtime
from api.limits import api_key_id, api_key_of_request, limiter
from api.parsing import Blueprint
from api.schemas import RequestSchema
from engine.rules.intake import LocationSchema, ReporterSchema
from engine.services import intake
from engine.services.clients import authenticate_client

blp = Blueprint("intake", __name__, url_prefix="/api/v1/intake",
                description="Intake from integrated systems (多渠道一门受理)")
DEFAULT_RATE_LIMIT = "120 per minute"


@blp.before_request
def _require_key() -> None:
    g.client = authenticate_client(runtime(), api_key_of_request(), "intake")


class SystemIntakeIn(RequestSchema):
    external_ref = fields.String(required=True, validate=[validate.Length(min=1, max=100),
                                                          validate.Regexp(r"^[\x21-\x7e]+$",
                                                                          error="must be printable ASCII, no spaces")],
                                 metadata={"description": "the source system's own reference: the idempotency key"})
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(required=True, validate=validate.Length(min=1, max=5000))
    category = fields.String(required=True, validate=validate.Length(min=1, max=50))
    reporter = fields.Nested(ReporterSchema, required=True)
    location = fields.Nested(LocationSchema, required=True,
                             metadata={"description": "grid code or lat/lon place the case (processes/grids.toml)"})
    media_url = fields.Url(load_default=None, allow_none=True, validate=validate.Length(max=500))


class IntakeUnitRef(Schema):
    code = fields.String()
    name = fields.String()


class SystemIntakeOut(Schema):
    case_no = fields.String()
    external_ref = fields.String()
    status = fields.String()
    channel = fields.String()
    community = fields.Nested(IntakeUnitRef)
    placement = fields.String(metadata={"description": "grid, coordinates or default_desk"})
    grid = fields.String(allow_none=True)
    current_unit = fields.Nested(IntakeUnitRef, allow_none=True)
    accepted_at = fields.String(metadata={"format": "date-time"})


def _limit() -> str:
    return current_app.config.get("INTAKE_RATE_LIMIT", DEFAULT_RATE_LIMIT)


@blp.route("", methods=["POST"])
@limiter.limit(_limit, key_func=api_key_id)
@blp.doc(security=[{"apiKey": []}])
@blp.arguments(SystemIntakeIn)
@blp.response(201, SystemIntakeOut)
@blp.alt_response(200, schema=SystemIntakeOut, description="the reference is known: the same case")
def submit(form):
    """Register a case from an integrated system; a known `external_ref` answers the same case (200)"""
    answer, created = intake.submit_case(runtime(), g.client, form)
    return answer, 201 if created else 200
