"""/api/v1/supervision: the supervision centre's records of late steps (督办)."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.auth import caller, require_token, runtime
from api.parsing import Blueprint
from api.schemas import PageQuery, RequestSchema, instant
from engine.services import supervision

blp = Blueprint("supervision", __name__, url_prefix="/api/v1/supervision",
                description="Supervision of late steps (红灯督办)")
blp.before_request(require_token)


class SupervisionQuery(PageQuery):
    status = fields.String(load_default="open", validate=validate.OneOf(["open", "closed", "all"]))
    unit = fields.String(validate=validate.Length(min=1, max=50))
    case = fields.String(validate=validate.Length(min=1, max=20), metadata={"description": "a case number"})


class SupervisionOut(Schema):
    id = fields.Integer()
    case_no = fields.String()
    step = fields.String(metadata={"description": "the BPMN user task that is late"})
    step_name = fields.String()
    unit = fields.String(allow_none=True)
    due_at = instant()
    opened_at = instant()
    status = fields.String(metadata={"enum": ["open", "closed"]})
    note = fields.String(allow_none=True)
    late_working_days = fields.Integer(allow_none=True)
    late_hours = fields.Float(allow_none=True)
    step_state = fields.String(allow_none=True, metadata={"enum": ["ready", "completed", "cancelled"]})
    closed_at = instant()
    closed_by = fields.String(allow_none=True)


class SupervisionPageOut(Schema):
    total = fields.Integer(metadata={"description": "exact up to LIST_COUNT_CAP (10,000), past it an estimate"})
    total_estimated = fields.Boolean(metadata={"description": "total is the database's estimate, not a count"})
    page = fields.Integer()
    per_page = fields.Integer()
    items = fields.List(fields.Nested(SupervisionOut))


class NoteIn(RequestSchema):
    note = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class CloseIn(RequestSchema):
    note = fields.String(validate=validate.Length(min=1, max=2000))


@blp.route("/overdue", methods=["GET"])
@blp.arguments(SupervisionQuery, location="query")
@blp.response(200, SupervisionPageOut)
def overdue(query):
    """Supervision records of late steps (open ones by default), most overdue first (supervisor, auditor)"""
    return supervision.list_supervisions(runtime(), caller(), query)


@blp.route("/<int:record_id>/note", methods=["POST"])
@blp.arguments(NoteIn)
@blp.response(200, SupervisionOut)
def note(body, record_id):
    """Add a note to a supervision record (supervisor)"""
    return supervision.note_supervision(runtime(), caller(), record_id, body["note"])


@blp.route("/<int:record_id>/close", methods=["POST"])
@blp.arguments(CloseIn)
@blp.response(200, SupervisionOut)
@blp.alt_response(409, response="CONFLICT")
def close(body, record_id):
    """Close a supervision record once its late step is done (supervisor)"""
    return supervision.close_supervision(runtime(), caller(), record_id, body.get("note"))
