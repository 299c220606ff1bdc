"""/api/v1/track/{case_no}: public tracking for the citizen (no token, no personal data)."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.auth import runtime
from api.parsing import Blueprint
from api.schemas import RequestSchema, instant
from engine.services import tracking

blp = Blueprint("track", __name__, url_prefix="/api/v1/track", description="Public case tracking (案件查询)")


class TrackQuery(RequestSchema):
    phone_last4 = fields.String(required=True, validate=validate.Regexp(r"^[0-9]{4}$", error="must be 4 digits"),
                                metadata={"description": "the last four digits of the phone the case was "
                                                         "reported with"})


class UnitRef(Schema):
    code = fields.String()
    name = fields.String()


class TrackOut(Schema):
    case_no = fields.String()
    status = fields.String()
    category = fields.String()
    category_name = fields.String()
    current_unit = fields.Nested(UnitRef, allow_none=True)
    handling_unit = fields.Nested(UnitRef, allow_none=True)
    accepted_at = instant()
    updated_at = instant()
    replied_at = instant()
    closed_at = instant()


@blp.route("/<case_no>", methods=["GET"])
@blp.doc(security=[])
@blp.arguments(TrackQuery, location="query")
@blp.response(200, TrackOut)
@blp.alt_response(404, response="NOT_FOUND")
def track(query, case_no):
    """Where a case is: status, units and dates; a wrong phone suffix is the same 404 as an unknown case"""
    return tracking.track_case(runtime(), case_no, query["phone_last4"])
