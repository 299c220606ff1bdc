"""/api/v1/cases/{case_no}/replay and /path: the audit views of one case.

The replay (auditors only) rebuilds the case from its pinned definition
version and its events alone and says whether it is consistent with the
record; `?until=N` adds the state as of event N. The path lists the BPMN
element ids the case passed through, for a diagram viewer to highlight.
"""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.auth import caller, require_token, runtime
from api.parsing import Blueprint
from api.schemas import RequestSchema
from engine.services import audit

blp = Blueprint("audit", __name__, url_prefix="/api/v1/cases", description="Audit: replay and path (审计)")
blp.before_request(require_token)


class ReplayQuery(RequestSchema):
    until = fields.Integer(validate=validate.Range(1, 2 ** 31 - 1),
                           metadata={"description": "replay up to the operation holding event N and show the "
                                                    "state then"})


class StepOut(Schema):
    seq = fields.Integer()
    type = fields.String()
    at = fields.String(metadata={"format": "date-time"})
    actor = fields.String(metadata={"description": "a user, timer:<worker> or system"})
    task_id = fields.String(allow_none=True)
    element = fields.String(allow_none=True)
    lane = fields.String(allow_none=True)
    definition_version = fields.Integer()
    payload = fields.Dict(allow_none=True, metadata={"description": "submitted data, timer instants, handler "
                                                                    "result, claim holders"})


class DivergenceOut(Schema):
    seq = fields.Integer(allow_none=True)
    type = fields.String(allow_none=True)
    element = fields.String(allow_none=True)
    reason = fields.String()


class OpenTaskOut(Schema):
    task_id = fields.String(allow_none=True)
    element = fields.String()
    name = fields.String()
    lane = fields.String(allow_none=True)
    assignee = fields.String(allow_none=True)


class TimerOut(Schema):
    element = fields.String()
    kind = fields.String()
    due_at = fields.String(metadata={"format": "date-time"})


class FiredOut(Schema):
    seq = fields.Integer()
    element = fields.String()
    kind = fields.String()
    due_at = fields.String(metadata={"format": "date-time"})
    fired_at = fields.String(metadata={"format": "date-time"})


class AsOfOut(Schema):
    seq = fields.Integer()
    open_tasks = fields.List(fields.Nested(OpenTaskOut))
    waiting_timers = fields.List(fields.Nested(TimerOut))
    deadlines_fired = fields.List(fields.Nested(FiredOut))
    completed = fields.Boolean()


class ReplayOut(Schema):
    case_no = fields.String()
    process_id = fields.String()
    definition_version = fields.Integer(allow_none=True, metadata={"description": "the version the case started on"})
    events = fields.Integer()
    steps = fields.List(fields.Nested(StepOut))
    consistent = fields.Boolean()
    verdict = fields.String(metadata={"example": "consistent"})
    divergence = fields.Nested(DivergenceOut, allow_none=True)
    as_of = fields.Nested(AsOfOut, metadata={"description": "only with ?until=N"})


class PathOut(Schema):
    case_no = fields.String()
    elements = fields.List(fields.String(), metadata={"description": "BPMN element ids passed through, in order"})
    open = fields.List(fields.String(), metadata={"description": "the user tasks open now"})
    consistent = fields.Boolean()


@blp.route("/<case_no>/replay", methods=["GET"])
@blp.arguments(ReplayQuery, location="query")
@blp.response(200, ReplayOut)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
def replay(query, case_no):
    """Rebuild the case from its definition version and events alone (auditors)"""
    return audit.replay_case(runtime(), case_no, user=caller(), until=query.get("until"))


@blp.route("/<case_no>/path", methods=["GET"])
@blp.response(200, PathOut)
@blp.alt_response(404, response="NOT_FOUND")
def path(case_no):
    """The BPMN element ids the case has passed through, in order"""
    return audit.case_path(runtime(), case_no, user=caller())
