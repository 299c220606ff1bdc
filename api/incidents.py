"""/api/v1/incidents: asynchronous work that failed for good, for administrators and designers."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.auth import caller, require_token, runtime
from api.parsing import Blueprint
from api.schemas import PageQuery, instant
from engine.services import incident_retry, incidents

blp = Blueprint("incidents", __name__, url_prefix="/api/v1/incidents",
                description="Incidents: timers (and notifications) that failed after their retries")
blp.before_request(require_token)


class IncidentQuery(PageQuery):
    status = fields.String(load_default="open", validate=validate.OneOf(["open", "resolved", "all"]))
    case = fields.String(validate=validate.Length(min=1, max=20), metadata={"description": "a case number"})
    kind = fields.String(validate=validate.OneOf(list(incidents.KINDS)))


class IncidentOut(Schema):
    id = fields.Integer()
    kind = fields.String(metadata={"enum": list(incidents.KINDS)})
    source = fields.String(metadata={"description": "the failed work: timer:<id>, case:<id>:<element>, ..."})
    case_no = fields.String(allow_none=True)
    element = fields.String(allow_none=True, metadata={"description": "the BPMN element that failed"})
    error = fields.String()
    error_type = fields.String(allow_none=True)
    details = fields.Dict()
    tries = fields.Integer()
    first_seen = instant()
    last_seen = instant()
    status = fields.String(metadata={"enum": ["open", "resolved"]})
    resolved_at = instant()
    resolved_by = fields.String(allow_none=True)
    resolution = fields.String(allow_none=True)


class IncidentPageOut(Schema):
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()
    items = fields.List(fields.Nested(IncidentOut))


class RetryOut(Schema):
    outcome = fields.String(metadata={"enum": ["resolved", "failed"]})
    error = fields.String(allow_none=True, metadata={"description": "why the retry failed"})
    incident = fields.Nested(IncidentOut)


@blp.route("", methods=["GET"])
@blp.arguments(IncidentQuery, location="query")
@blp.response(200, IncidentPageOut)
@blp.alt_response(403, response="FORBIDDEN")
def list_incidents(query):
    """Incidents, latest first: open ones by default (administrator, designer)"""
    return incidents.list_incidents(runtime(), caller(), query)


@blp.route("/<int:incident_id>", methods=["GET"])
@blp.response(200, IncidentOut)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
def get_incident(incident_id):
    """One incident (administrator, designer)"""
    return incidents.get_incident(runtime(), caller(), incident_id)


@blp.route("/<int:incident_id>/retry", methods=["POST"])
@blp.response(200, RetryOut)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def retry(incident_id):
    """Re-attempt the failed work once now; success resolves the incident (administrator, designer)"""
    return incident_retry.retry_incident(runtime(), caller(), incident_id)
