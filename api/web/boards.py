"""The watching pages: supervision board, statistics and assessment, designer, auditor, incidents, tracking.

Like every console page, each calls the service the JSON API calls with the
signed-in caller (the roles a service checks are the API's), and renders it.
"""
from __future__ import annotations

from datetime import date

from flask import Response, redirect, request, url_for

from api.auth import runtime
from api.limits import config, limiter
from api.web.base import bp, current_caller, page
from engine import clock
from engine.errors import Conflict, DefinitionInvalid, InvalidInput, NotFound
from engine.services import (assessment, audit, incident_retry, incidents, processes, reports, statistics,
                             supervision, tracking)

CHARTS = ("completion_by_unit", "satisfaction_by_unit", "trend")


def _this_month() -> tuple[date, date, str]:
    today = clock.now().astimezone(runtime().tz).date()
    return today.replace(day=1), today, f"{today.year}-{today.month:02d}"


def _day(name: str, default: date) -> date:
    try:
        return date.fromisoformat(request.args.get(name) or default.isoformat())
    except ValueError:
        raise InvalidInput(f"{name} is not a date", errors={name: ["must be YYYY-MM-DD"]}) from None


# -- supervision (督办) ----------------------------------------------------------------------------

@bp.route("/supervision", methods=["GET"])
def supervision_page():
    rt, me = runtime(), current_caller()
    status = request.args.get("status") if request.args.get("status") in ("open", "closed", "all") else "open"
    records = supervision.list_supervisions(rt, me, {"status": status, "unit": request.args.get("unit") or None,
                                                     "page": request.args.get("page", type=int) or 1,
                                                     "per_page": 100})
    first, today, _month = _this_month()
    lights = statistics.compute_statistics(rt, me, statistics.period(rt, first, today), group_by="unit")
    by_unit: dict[str, list] = {}
    for record in records["items"]:
        by_unit.setdefault(record["unit"], []).append(record)
    names = {code: (u.name if u else code) for code in by_unit for u in [rt.tables.units.get(code)]}
    return page("supervision.html", records=records, by_unit=by_unit, names=names, state=status,
                lights=[g for g in lights["groups"] if g.get("red_lights") or g.get("yellow_lights")])


@bp.route("/supervision/<int:record_id>/note", methods=["POST"])
def supervision_note(record_id):
    supervision.note_supervision(runtime(), current_caller(), record_id, request.form.get("note", ""))
    return redirect(url_for("web.supervision_page"))


@bp.route("/supervision/<int:record_id>/close", methods=["POST"])
def supervision_close(record_id):
    supervision.close_supervision(runtime(), current_caller(), record_id, request.form.get("note") or None)
    return redirect(url_for("web.supervision_page"))


# -- statistics and the monthly assessment ---------------------------------------------------------

@bp.route("/statistics", methods=["GET"])
def statistics_page():
    rt, me = runtime(), current_caller()
    first, today, month = _this_month()
    first, last = _day("from", first), _day("to", today)
    month = request.args.get("month") or month
    stats = statistics.compute_statistics(rt, me, statistics.period(rt, first, last), group_by="unit")
    try:
        graded = assessment.monthly_assessment(rt, month)
    except (InvalidInput, NotFound, Conflict) as exc:  # no rules in force that month: the figures still show
        graded = {"error": exc.message}
    return page("statistics.html", stats=stats, first=first, last=last, month=month, charts=CHARTS,
                graded=graded, definitions={d["key"]: d for d in statistics.definitions()})


@bp.route("/charts/<any(completion_by_unit,satisfaction_by_unit,trend):chart>.svg", methods=["GET"])
def chart(chart):
    first, today, month = _this_month()
    svg = reports.chart_svg(runtime(), current_caller(), chart, _day("from", first), _day("to", today),
                            request.args.get("month") or month)
    return Response(svg, mimetype="image/svg+xml")


@bp.route("/assessment/<string:month>.xlsx", methods=["GET"])
def assessment_xlsx(month):
    data = reports.monthly_workbook(runtime(), current_caller(), month)
    return Response(data, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="report-{month}.xlsx"'})


# -- the designer's page ---------------------------------------------------------------------------

def _uploads() -> dict[str, bytes]:
    from api.processes import _sources

    return _sources(request.files.getlist("file"))


@bp.route("/designer", methods=["GET"])
def designer_page(status: int = 200, **context):
    rt = runtime()
    listing = processes.list_processes(rt)
    chosen = request.args.get("process")
    versions = processes.list_versions(rt, chosen) if chosen else []
    diff = None
    if chosen and request.args.get("from", type=int) and request.args.get("to", type=int):
        diff = processes.diff_versions(rt, chosen, request.args.get("from", type=int), request.args.get("to", type=int))
    return page("designer.html", status, processes=listing, chosen=chosen, versions=versions, diff=diff, **context)


@bp.route("/designer/validate", methods=["POST"])
def designer_validate():
    result = processes.validate_files(runtime(), _uploads(), user=current_caller())
    return designer_page(200 if result["valid"] else 422, validation=result)


@bp.route("/designer/deploy", methods=["POST"])
def designer_deploy():
    try:
        deployed = processes.deploy_sources(runtime(), _uploads(), user=current_caller())
    except DefinitionInvalid as exc:
        files: dict[str, list] = {}
        for p in exc.problems:
            files.setdefault(p.get("file") or "", []).append(p)
        return designer_page(exc.status, validation={"valid": False, "message": exc.message,
                                                     "files": [{"file": f, "problems": ps} for f, ps in files.items()]})
    return designer_page(201, deployed=deployed)


# -- the auditor's page ----------------------------------------------------------------------------

@bp.route("/audit", methods=["GET"])
def audit_page():
    case_no = (request.args.get("case") or "").strip()
    replay = None
    if case_no:
        replay = audit.replay_case(runtime(), case_no, user=current_caller(),
                                   until=request.args.get("until", type=int))
    return page("audit.html", case_no=case_no, replay=replay, until=request.args.get("until", type=int))


# -- incidents (administrators) --------------------------------------------------------------------

@bp.route("/incidents", methods=["GET"])
def incidents_page():
    status = request.args.get("status") or "open"
    listing = incidents.list_incidents(runtime(), current_caller(),
                                       {"status": status, "page": request.args.get("page", type=int) or 1})
    return page("incidents.html", listing=listing, state=status)


@bp.route("/incidents/<int:incident_id>/retry", methods=["POST"])
def incident_retry_page(incident_id):
    incident_retry.retry_incident(runtime(), current_caller(), incident_id)
    return redirect(url_for("web.incidents_page"))


# -- public tracking (no sign-in, no personal data) ------------------------------------------------

@bp.route("/track", methods=["GET"])
@limiter.limit(config("RATELIMIT_TRACKING"), exempt_when=lambda: not request.args.get("code"))
def track():
    code = (request.args.get("code") or "").strip()
    found, status = None, 200
    if code:
        try:
            found = tracking.track_case(runtime(), code)
        except NotFound:
            status = 404
    return page("track.html", status, code=code, found=found)
