"""The other procedures' pages: the people's-conditions log, screening rounds, mediation hand-offs, the 稳评 gate.

A grid worker records the households visited (民情日志) and turns an entry into a case in
one action; anyone signed in sees the log and its counts per grid, as the JSON API shows
them; the screening rounds (矛盾排查) list what each unit found; a unit's handler hands a
dispute to a mediation body (调解对接). Each view calls the service function the JSON API
calls, with the signed-in caller. A leader approves an assessed project from the
assessment's case page: refused, naming why, unless the assessment finished and allows it.
"""
from __future__ import annotations

from flask import redirect, request, url_for

from api.auth import runtime
from api.web.base import bp, current_caller, page
from engine.errors import InvalidInput
from engine.services import mediation, people_log, screening, stability

LOG_FIELDS = ("grid", "household", "topic", "notes", "follow_up", "visited_on")
HANDOFF_FIELDS = ("mediation_body", "title", "description", "category", "community")


def _form(names) -> dict:
    return {k: v.strip() for k in names if (v := request.form.get(k)) is not None and v.strip()}


@bp.route("/log", methods=["GET"])
def log_page(status: int = 200, errors: dict | None = None, values: dict | None = None):
    rt = runtime()
    filters = {k: v for k in ("grid", "worker") if (v := (request.args.get(k) or "").strip())}
    listing = people_log.list_entries(rt, filters, limit=100)
    counts = people_log.count_entries(rt, "grid", filters)
    return page("log.html", status, listing=listing, counts=counts, filters=filters, errors=errors or {},
                values=values or {}, categories=rt.tables.routes)


@bp.route("/log", methods=["POST"])
def record_log_entry():
    values = _form(LOG_FIELDS)
    try:
        people_log.record_entry(runtime(), values, user=current_caller())
    except InvalidInput as exc:
        return log_page(exc.status, exc.errors, values)
    return redirect(url_for("web.log_page"))


@bp.route("/log/<int:entry_id>/case", methods=["POST"])
def log_entry_to_case(entry_id):
    form = {"category": request.form.get("category"),
            "reporter": {"name": (request.form.get("reporter_name") or "").strip(),
                         "phone": (request.form.get("reporter_phone") or "").strip()}}
    try:
        result = people_log.entry_to_case(runtime(), entry_id, form, user=current_caller())
    except InvalidInput as exc:
        return log_page(exc.status, {f"entry_{entry_id}": [f"{k}: {'; '.join(v)}" for k, v in exc.errors.items()]})
    return redirect(url_for("web.case_page", case_no=result["case"]["case_no"]))


@bp.route("/screening", methods=["GET"])
def screening_page():
    level = request.args.get("level") or None
    return page("screening.html", rounds=screening.list_rounds(runtime(), level, 50), level=level)


@bp.route("/mediation", methods=["GET"])
def mediation_page(status: int = 200, errors: dict | None = None, values: dict | None = None):
    rt = runtime()
    bodies = [rt.tables.units[c] for c in rt.tables.org.mediation_bodies()]
    return page("mediation.html", status, bodies=bodies, categories=rt.tables.routes,
                communities=rt.tables.org.communities(), errors=errors or {}, values=values or {})


@bp.route("/mediation", methods=["POST"])
def hand_to_mediation():
    values = _form(HANDOFF_FIELDS)
    try:
        case = mediation.hand_to_mediation(runtime(), values, user=current_caller())
    except InvalidInput as exc:
        return mediation_page(exc.status, exc.errors, values)
    return redirect(url_for("web.case_page", case_no=case["case_no"]))


@bp.route("/assessments/<case_no>/approval", methods=["POST"])
def approve_project_page(case_no):
    from api.web.pages import case_page

    try:
        stability.approve_project(runtime(), case_no, note=(request.form.get("note") or "").strip() or None,
                                  user=current_caller())
    except InvalidInput as exc:
        return case_page(case_no, exc.status, approval_errors=exc.errors)
    return redirect(url_for("web.case_page", case_no=case_no) + "#project-approval")
