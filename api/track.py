"""/api/v1/track/{tracking_code}: public tracking for the citizen (no token, no personal data, rate-limited)."""
from __future__ import annotations

from marshmallow import Schema, fields

from api.auth import runtime
from api.limits import config, documented_429, limiter
from api.parsing import Blueprint
from api.schemas import instant
from engine.services import tracking

blp = Blueprint("track", __name__, url_prefix="/api/v1/track", description="Public case tracking (案件查询)")


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


@blp.route("/<tracking_code>", methods=["GET"])
@limiter.limit(config("RATELIMIT_TRACKING"))
@blp.doc(security=[], parameters=[{"in": "path", "name": "tracking_code", "required": True,
                                   "description": "the code issued at intake (12 symbols of Crockford base32; "
                                                  "case, hyphens and spaces do not matter)",
                                   "schema": {"type": "string", "minLength": 1, "maxLength": 48}}])
@blp.response(200, TrackOut)
@blp.alt_response(404, response="NOT_FOUND")
@documented_429(blp)
def track(tracking_code):
    """Where a case is: status, units and dates; an unknown code is a 404"""
    return tracking.track_case(runtime(), tracking_code)
