"""/api/v1/statistics and /api/v1/assessment: the figures, the monthly assessment, its XLSX and charts.

Thin: each view parses its query, calls one service function and returns its result. Scope is
the service's: a unit sees its subtree; the supervision centre and auditors see everything.
The monthly assessment is published to every unit (as the seeds' 月度考核通报 was).
"""
from __future__ import annotations

from datetime import date

from flask import Response
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.auth import caller, require_token, runtime
from api.parsing import Blueprint
from api.schemas import RequestSchema
from engine.services import assessment, reports, statistics

blp = Blueprint("statistics", __name__, url_prefix="/api/v1", description="Statistics and the monthly assessment "
                                                                          "(综合统计, 月度考核)")
blp.before_request(require_token)

MONTH = {"pattern": r"^\d{4}-(0[1-9]|1[0-2])$", "example": "2026-11"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2099, 12, 31)
YEARS = {"pattern": r"^20[0-9]{2}-"}  # the days statistics cover: 2000-01-01 .. 2099-12-31


def day(description: str | None = None, **kwargs):
    metadata = {**YEARS, **({"description": description} if description else {})}
    return fields.Date(validate=validate.Range(FIRST_DAY, LAST_DAY), metadata=metadata, **kwargs)


class PeriodQuery(RequestSchema):
    from_ = day(data_key="from", required=True, description="first day (local), inclusive, not after `to`")
    to = day(required=True, description="last day (local), inclusive")
    basis = fields.String(load_default="accepted", validate=validate.OneOf(statistics.BASES),
                          metadata={"description": "which instant selects the cases: acceptance or reported_at"})

    @validates_schema
    def _ordered(self, data, **_kwargs):
        if data.get("from_") and data.get("to") and data["to"] < data["from_"]:
            raise ValidationError("must not be before 'from'", field_name="to")


class StatisticsQuery(PeriodQuery):
    group_by = fields.String(validate=validate.OneOf(statistics.GROUPINGS))
    unit = fields.String(validate=validate.Length(min=1, max=50), metadata={"description": "a unit's subtree"})
    category = fields.String(validate=validate.Length(min=1, max=50),
                             metadata={"description": "a category of routing.toml (the document lists them)",
                                       "routing_category": True})  # api.contract: the enum, the service: 422
    channel = fields.String(validate=validate.Length(min=1, max=20))


class ChartQuery(RequestSchema):
    from_ = day(data_key="from", description="for the charts by unit; not after `to`")
    to = day()
    month = fields.String(validate=validate.Regexp(MONTH["pattern"]), metadata={"description": "for the trend"})


class StatisticsOut(Schema):
    period = fields.Dict()
    group_by = fields.String(allow_none=True)
    filters = fields.Dict()
    total = fields.Dict(metadata={"description": "every figure of the definitions table, by its key"})
    groups = fields.List(fields.Dict())


class DefinitionOut(Schema):
    key = fields.String()
    definition = fields.String()


class AssessmentOut(Schema):
    month = fields.String()
    closed = fields.Boolean()
    closed_at = fields.String()
    closed_by = fields.String()
    sha256 = fields.String()
    rules_version = fields.Integer()
    base = fields.Float()
    statistics = fields.Dict()
    units = fields.List(fields.Dict(), metadata={"description": "score, rank among peers, change, deductions "
                                                                "with the cases behind each"})


@blp.route("/statistics", methods=["GET"])
@blp.arguments(StatisticsQuery, location="query")
@blp.response(200, StatisticsOut)
def get_statistics(query):
    """The figures for a period, grouped and filtered (a unit sees its subtree)"""
    p = statistics.period(runtime(), query["from_"], query["to"], query["basis"])
    return statistics.compute_statistics(runtime(), caller(), p, query.get("group_by"), query.get("unit"),
                                         query.get("category"), query.get("channel"))


@blp.route("/statistics/definitions", methods=["GET"])
@blp.response(200, DefinitionOut(many=True))
def get_definitions():
    """What each figure counts"""
    return statistics.definitions()


@blp.route("/statistics/charts/<any(completion_by_unit,satisfaction_by_unit,trend):chart>.svg", methods=["GET"])
@blp.arguments(ChartQuery, location="query")
@blp.response(200, content_type="image/svg+xml")
def get_chart(query, chart):
    """A chart as SVG (server-side, no script source or asset from elsewhere)"""
    svg = reports.chart_svg(runtime(), caller(), chart, query.get("from_"), query.get("to"), query.get("month"))
    return Response(svg, mimetype="image/svg+xml")


@blp.route("/assessment/<string:month>", methods=["GET"])
@blp.response(200, AssessmentOut)
def get_assessment(month):
    """The monthly assessment: frozen once the month is closed, provisional before"""
    return assessment.monthly_assessment(runtime(), month)


@blp.route("/assessment/<string:month>.xlsx", methods=["GET"])
@blp.response(200, content_type=XLSX)
def get_assessment_xlsx(month):
    """The monthly report as an Excel workbook with charts"""
    data = reports.monthly_workbook(runtime(), caller(), month)
    return Response(data, mimetype=XLSX,
                    headers={"Content-Disposition": f'attachment; filename="report-{month}.xlsx"'})
