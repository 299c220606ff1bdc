"""/api/v1/assessments: the stability risk assessment (稳评) of a major decision, and the approval gate."""
from __future__ import annotations

from flask.views import MethodView
from marshmallow import Schema, fields, validate

from api.auth import caller, require_token, runtime
from api.parsing import Blueprint
from api.schemas import CaseOut, RequestSchema
from engine.services import stability

blp = Blueprint("assessments", __name__, url_prefix="/api/v1/assessments",
                description="Stability risk assessment (社会稳定风险评估)")
blp.before_request(require_token)


class AssessorIn(RequestSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    credit_code = fields.String(validate=validate.Length(min=1, max=30))
    contact = fields.String(validate=validate.Length(min=1, max=200))


class AssessmentIn(RequestSchema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(required=True, validate=validate.Length(min=1, max=5000))
    project_kind = fields.String(required=True, validate=validate.OneOf(stability.PROJECT_KINDS))
    community = fields.String(required=True, validate=validate.Length(min=1, max=50),
                              metadata={"description": "where the project is: its district, street and community "
                                                       "give opinions"})
    owner_unit = fields.String(validate=validate.Length(min=1, max=50),
                               metadata={"description": "the project's owner unit (default: the caller's)"})
    assessor = fields.Nested(AssessorIn, required=True, metadata={"description": "the third-party assessor"})


class ApprovalIn(RequestSchema):
    note = fields.String(validate=validate.Length(min=1, max=2000))


class LinkIn(RequestSchema):
    case_no = fields.String(required=True, validate=validate.Length(min=1, max=20),
                            metadata={"description": "a demolition or enterprise-restructuring case"})


class StabilityAssessmentOut(Schema):
    case_no = fields.String()
    title = fields.String()
    status = fields.String()
    project_kind = fields.String(allow_none=True)
    owner_unit = fields.String(allow_none=True)
    assessor = fields.Dict(allow_none=True)
    opinion_units = fields.List(fields.String(), allow_none=True)
    opinions = fields.List(fields.Dict(), allow_none=True)
    hearing_kind = fields.String(allow_none=True)
    respondents = fields.Integer(allow_none=True)
    support_percent = fields.Integer(allow_none=True)
    risk_level = fields.String(allow_none=True, metadata={"enum": ["low", "medium", "high", None]})
    assessment_decision = fields.String(allow_none=True, metadata={
        "enum": ["proceed", "proceed_with_measures", "stop", None]})
    measures = fields.List(fields.Dict(), allow_none=True)
    measures_done = fields.List(fields.Dict(), allow_none=True)
    assessment_finished = fields.Boolean(allow_none=True)
    approved = fields.Boolean()
    approved_at = fields.String(allow_none=True)
    approved_by = fields.String(allow_none=True)
    linked_cases = fields.List(fields.String())


class ApprovalOut(Schema):
    case_no = fields.String()
    approved = fields.Boolean()
    approved_at = fields.String()
    approved_by = fields.String()
    decision = fields.String()


class LinkOut(Schema):
    case_no = fields.String()
    assessment = fields.String()


@blp.route("")
class Assessments(MethodView):
    @blp.arguments(AssessmentIn)
    @blp.response(201, CaseOut)
    @blp.alt_response(403, response="FORBIDDEN")
    def post(self, form):
        """Start a stability risk assessment: the project's owner unit, with its third-party assessor"""
        return stability.start_assessment(runtime(), form, user=caller())


@blp.route("/<case_no>")
@blp.response(200, StabilityAssessmentOut)
@blp.alt_response(404, response="NOT_FOUND")
def get_assessment(case_no):
    """The assessment: opinions, hearing, risk level, decision, measures, approval and linked cases"""
    return stability.assessment_view(runtime(), case_no, user=caller())


@blp.route("/<case_no>/approval", methods=["POST"])
@blp.arguments(ApprovalIn)
@blp.response(201, ApprovalOut)
@blp.alt_response(409, response="CONFLICT")
def approve(form, case_no):
    """Mark the project approved: refused (422, field `assessment`) unless the finished assessment allows it"""
    return stability.approve_project(runtime(), case_no, note=form.get("note"), user=caller())


@blp.route("/<case_no>/links", methods=["POST"])
@blp.arguments(LinkIn)
@blp.response(201, LinkOut)
def link(form, case_no):
    """A demolition or enterprise-restructuring case references this assessment"""
    return stability.link_case(runtime(), case_no, form["case_no"], user=caller())
