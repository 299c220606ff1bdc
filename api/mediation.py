"""/api/v1/mediation: hand a dispute to a mediation body (调解对接) and read the docking's outcome."""
from __future__ import annotations

from flask.views import MethodView
from marshmallow import Schema, fields, validate

from api.auth import caller, require_token, runtime
from api.parsing import Blueprint
from api.schemas import CaseOut, RequestSchema
from engine.services import mediation

blp = Blueprint("mediation", __name__, url_prefix="/api/v1/mediation", description="Mediation docking (调解对接)")
blp.before_request(require_token)


class DockingIn(RequestSchema):
    mediation_body = fields.String(required=True, validate=validate.Length(min=1, max=50), metadata={
        "description": "the unit code of a mediation body (a unit whose kind ends in _mediation)",
        "example": "YC-YTW"})
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(required=True, validate=validate.Length(min=1, max=5000))
    category = fields.String(required=True, validate=validate.Length(min=1, max=50))
    community = fields.String(required=True, validate=validate.Length(min=1, max=50))
    handing_unit = fields.String(validate=validate.Length(min=1, max=50),
                                 metadata={"description": "the unit handing the case on (default: the caller's)"})


class SessionOut(Schema):
    no = fields.Integer()
    date = fields.String()
    participants = fields.String(allow_none=True)
    team = fields.Dict(metadata={"description": "the medical committee's doctor, lawyer and mediator"})
    notes = fields.String(allow_none=True)
    result = fields.String()
    four_in_one = fields.String(metadata={"enum": ["administrative", "people", "judicial", "arbitration"]})
    recorded_at = fields.String(metadata={"format": "date-time"})


class DockingOut(Schema):
    case_no = fields.String()
    status = fields.String()
    mediation_body = fields.String(allow_none=True)
    mediation_kind = fields.String(allow_none=True)
    mediation_outcome = fields.String(allow_none=True, metadata={
        "enum": ["agreement", "failure", "litigation", "arbitration", None]})
    mediation_failure = fields.String(allow_none=True)
    agreement_amount = fields.Integer(allow_none=True)
    agreement_text = fields.String(allow_none=True)
    judicial_confirmation = fields.Boolean(allow_none=True)
    court_body = fields.String(allow_none=True)
    mediation_sessions = fields.List(fields.Nested(SessionOut), allow_none=True)


@blp.route("/dockings")
class Dockings(MethodView):
    @blp.arguments(DockingIn)
    @blp.response(201, CaseOut)
    @blp.alt_response(403, response="FORBIDDEN")
    def post(self, form):
        """Hand a dispute to a mediation body: the body accepts, holds sessions, and records the outcome"""
        return mediation.hand_to_mediation(runtime(), form, user=caller())


@blp.route("/dockings/<case_no>")
@blp.response(200, DockingOut)
@blp.alt_response(404, response="NOT_FOUND")
def get_docking(case_no):
    """A docking's outcome: agreement (amount, judicial confirmation), failure, litigation or arbitration"""
    return mediation.mediation_record(runtime(), case_no, user=caller())
