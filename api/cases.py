"""/api/v1/cases: intake, the case list, one case, its event log."""
from __future__ import annotations

from flask.views import MethodView
from marshmallow import Schema, fields, validate

from api.auth import caller, require_token, runtime
from api.parsing import Blueprint
from api.schemas import CaseOut, CasePageOut, PageQuery, RequestSchema
from engine.rules.intake import IntakeSchema, LocationSchema, ReporterSchema
from engine.rules.status import CaseStatus
from engine.services import cases, search

blp = Blueprint("cases", __name__, url_prefix="/api/v1/cases", description="Cases (矛盾纠纷案件)")
blp.before_request(require_token)


class ReporterIn(RequestSchema, ReporterSchema):
    pass


class LocationIn(RequestSchema, LocationSchema):
    pass


class IntakeIn(RequestSchema, IntakeSchema):
    """The intake form; the community is the caller's own and may be left out."""

    reporter = fields.Nested(ReporterIn, required=True)
    location = fields.Nested(LocationIn, required=True)

    community = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=50),
                              metadata={"description": "defaults to the caller's community"})


class IntakeOut(CaseOut):
    tracking_code = fields.String(metadata={
        "description": "the citizen's tracking code for GET /api/v1/track/{tracking_code}: shown only "
                       "here (and sent to the reporter), stored only as a hash", "example": "7K3M9QXD2HFA"})


class CaseListQuery(PageQuery):
    status = fields.String(validate=validate.OneOf([s.value for s in CaseStatus]))
    category = fields.String(validate=validate.Length(min=1, max=50))
    unit = fields.String(validate=validate.Length(min=1, max=50),
                         metadata={"description": "accepting community, routed unit or unit holding the case"})
    level = fields.String(validate=validate.Length(min=1, max=30))
    overdue = fields.Boolean(metadata={"description": "has an open task past its due instant"})
    created_from = fields.DateTime(metadata={"description": "inclusive; without an offset, Asia/Shanghai time"})
    created_to = fields.DateTime(metadata={"description": "exclusive"})
    reported_from = fields.DateTime(metadata={"description": "reported at or after (inclusive; without an offset, "
                                                            "Asia/Shanghai time)"})
    reported_to = fields.DateTime(metadata={"description": "reported before (exclusive)"})
    q = fields.String(validate=validate.Length(min=1, max=100),
                      metadata={"description": "free text in case number, title, description, address"})


class EventOut(Schema):
    seq = fields.Integer()
    type = fields.String()
    at = fields.String(metadata={"format": "date-time"})
    actor = fields.String()
    task_id = fields.String(allow_none=True)
    element = fields.String(allow_none=True)
    lane = fields.String(allow_none=True)
    payload = fields.Dict(allow_none=True)
    definition_version = fields.Integer()


@blp.route("")
class Cases(MethodView):
    @blp.arguments(CaseListQuery, location="query")
    @blp.response(200, CasePageOut)
    def get(self, filters):
        """The cases in the caller's scope, newest first, filtered and paginated"""
        return search.list_cases(runtime(), caller(), filters)

    @blp.arguments(IntakeIn)
    @blp.response(201, IntakeOut)
    @blp.alt_response(403, response="FORBIDDEN")
    def post(self, intake):
        """Register a case (一门受理): an acceptor or grid worker of a community"""
        return cases.start_case(runtime(), intake, user=caller())


@blp.route("/<case_no>")
@blp.response(200, CaseOut)
@blp.alt_response(404, response="NOT_FOUND")
def get_case(case_no):
    """One case, with its open tasks"""
    return cases.get_case(runtime(), case_no, user=caller())


@blp.route("/<case_no>/events")
@blp.response(200, EventOut(many=True))
@blp.alt_response(404, response="NOT_FOUND")
def case_events(case_no):
    """The case's event log, in order"""
    return cases.case_events(runtime(), case_no, user=caller())
