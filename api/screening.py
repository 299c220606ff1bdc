"""/api/v1/screening: periodic screening schedules and rounds, findings, and the people's-conditions log."""
from __future__ import annotations

from flask.views import MethodView
from marshmallow import Schema, fields, validate

from api.auth import caller, require_token, runtime
from api.cases import IntakeIn, ReporterIn
from api.parsing import Blueprint
from api.schemas import CaseOut, RequestSchema
from engine.services import people_log, screening

blp = Blueprint("screening", __name__, url_prefix="/api/v1/screening",
                description="Periodic screening (矛盾排查) and the people's-conditions log (民情日志)")
blp.before_request(require_token)


class ScheduleIn(RequestSchema):
    level = fields.String(required=True, validate=validate.Length(min=1, max=30),
                          metadata={"description": "a level of processes/screening.toml", "example": "community"})


class RoundsQuery(RequestSchema):
    level = fields.String(validate=validate.Length(min=1, max=30))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=1000))


class FindingOut(Schema):
    unit = fields.String()
    finding = fields.String(metadata={"enum": list(screening.FINDINGS)})
    case_no = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    recorded_at = fields.String()


class RoundOut(Schema):
    id = fields.Integer()
    level = fields.String()
    period_start = fields.String(metadata={"format": "date"})
    units = fields.List(fields.String())
    opened_at = fields.String()
    findings = fields.List(fields.Nested(FindingOut))


class ScreeningIntakeIn(IntakeIn):
    """The intake form of a case found in screening: its channel is `screening`, reported now."""

    class Meta:
        exclude = ("channel", "reported_at")


class FindingIn(RequestSchema):
    finding = fields.String(required=True, validate=validate.OneOf(screening.FINDINGS))
    note = fields.String(validate=validate.Length(min=1, max=5000))
    case_no = fields.String(validate=validate.Length(min=1, max=20),
                            metadata={"description": "new_case: a case registered already"})
    intake = fields.Nested(ScreeningIntakeIn, metadata={"description": "new_case: the new case's intake form (its channel is "
                                                              "set to screening)"})


class FindingResultOut(Schema):
    round_id = fields.Integer(allow_none=True)
    unit = fields.String(allow_none=True)
    finding = fields.String()
    case_no = fields.String(allow_none=True)
    schedule = fields.String()
    tracking_code = fields.String(allow_none=True)


class EntryIn(RequestSchema):
    grid = fields.String(required=True, validate=validate.Length(min=1, max=50))
    household = fields.String(required=True, validate=validate.Length(min=1, max=200))
    topic = fields.String(required=True, validate=validate.Length(min=1, max=50))
    notes = fields.String(required=True, validate=validate.Length(min=1, max=5000))
    follow_up = fields.String(validate=validate.Length(min=1, max=2000))
    visited_on = fields.Date()
    community = fields.String(validate=validate.Length(min=1, max=50))


class EntryOut(Schema):
    id = fields.Integer()
    grid = fields.String()
    community = fields.String()
    worker = fields.String()
    household = fields.String()
    topic = fields.String()
    notes = fields.String()
    follow_up = fields.String(allow_none=True)
    visited_on = fields.String(metadata={"format": "date"})
    recorded_at = fields.String()
    case_no = fields.String(allow_none=True)


class EntryQuery(RequestSchema):
    grid = fields.String(validate=validate.Length(min=1, max=50))
    worker = fields.String(validate=validate.Length(min=1, max=100))
    community = fields.String(validate=validate.Length(min=1, max=50))
    topic = fields.String(validate=validate.Length(min=1, max=50))
    case_no = fields.String(validate=validate.Length(min=1, max=20))
    has_case = fields.Boolean()
    from_ = fields.Date(data_key="from")
    to = fields.Date()
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=1000))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=1_000_000))


class EntryPageOut(Schema):
    total = fields.Integer()
    items = fields.List(fields.Nested(EntryOut))


class CountQuery(EntryQuery):
    by = fields.String(required=True, validate=validate.OneOf(people_log.GROUPS))


class CountOut(Schema):
    key = fields.String()
    entries = fields.Integer()
    cases = fields.Integer()


class ToCaseIn(RequestSchema):
    category = fields.String(required=True, validate=validate.Length(min=1, max=50))
    reporter = fields.Nested(ReporterIn, required=True)
    title = fields.String(validate=validate.Length(min=1, max=200))
    address = fields.String(validate=validate.Length(min=1, max=300))


class ToCaseOut(Schema):
    entry = fields.Nested(EntryOut)
    case = fields.Nested(CaseOut)


def _filters(query: dict) -> tuple[dict, int, int]:
    query = dict(query)
    limit, offset = query.pop("limit", 50), query.pop("offset", 0)
    if "from_" in query:
        query["from"] = query.pop("from_")
    query.pop("by", None)
    return query, limit, offset


@blp.route("/schedules", methods=["POST"])
@blp.arguments(ScheduleIn)
@blp.response(201, CaseOut)
@blp.alt_response(403, response="FORBIDDEN")
def start_schedule(form):
    """Start a level's screening schedule (a supervisor or an administrator); the running one if it exists"""
    return screening.start_schedule(runtime(), form["level"], user=caller())


@blp.route("/rounds")
@blp.arguments(RoundsQuery, location="query")
@blp.response(200, RoundOut(many=True))
def rounds(query):
    """The latest screening rounds and what each unit found"""
    return screening.list_rounds(runtime(), query.get("level"), query["limit"])


@blp.route("/tasks/<task_id>/findings", methods=["POST"])
@blp.arguments(FindingIn)
@blp.response(201, FindingResultOut)
@blp.alt_response(404, response="NOT_FOUND")
def report_finding(form, task_id):
    """A unit's finding for its screening task: nothing new, a risk update, or a new case (linked to the round)"""
    return screening.report_finding(runtime(), task_id, form, user=caller())


@blp.route("/log")
class Log(MethodView):
    @blp.arguments(EntryQuery, location="query")
    @blp.response(200, EntryPageOut)
    def get(self, query):
        """People's-conditions log entries, filtered by grid, worker, community, topic, period, case"""
        filters, limit, offset = _filters(query)
        return people_log.list_entries(runtime(), filters, limit, offset)

    @blp.arguments(EntryIn)
    @blp.response(201, EntryOut)
    @blp.alt_response(403, response="FORBIDDEN")
    def post(self, form):
        """Record a visit (a community's grid worker or acceptor)"""
        return people_log.record_entry(runtime(), form, user=caller())


@blp.route("/log/counts")
@blp.arguments(CountQuery, location="query")
@blp.response(200, CountOut(many=True))
def log_counts(query):
    """Entries and the cases they became, per grid, worker or period (day, week, month)"""
    by = query["by"]
    filters, _, _ = _filters(query)
    return [{"key": r[by], "entries": r["entries"], "cases": r["cases"]}
            for r in people_log.count_entries(runtime(), by, filters)]


@blp.route("/log/<int:entry_id>/case", methods=["POST"])
@blp.arguments(ToCaseIn)
@blp.response(201, ToCaseOut)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def entry_to_case(form, entry_id):
    """Turn a log entry into a case in one action (channel grid_worker), linked both ways"""
    return people_log.entry_to_case(runtime(), entry_id, form, user=caller())
