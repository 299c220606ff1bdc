"""The working pages: task lists, a task and its generated form, intake, the case list and the case page.

Each view calls the service functions the JSON API calls, with the signed-in
caller, and renders what they return; a task's form is the BPMN form of the
task (`form` of engine.services.cases.get_task), so it follows the procedure.
"""
from __future__ import annotations

from flask import redirect, request, url_for
from marshmallow import ValidationError

from api.auth import runtime
from api.errors import dotted
from api.web.base import bp, current_caller, page
from api.web.forms import intake_data, task_data
from engine.errors import InvalidInput
from engine.rules.intake import CHANNELS
from engine.rules.status import CaseStatus
from engine.services import cases, comments, search, tasks
from engine.services.case_file import case_file

LIGHTS = ("green", "yellow", "red")


@bp.route("/tasks", methods=["GET"])
def tasks_page():
    scope = request.args.get("scope", "mine")
    scope = scope if scope in tasks.SCOPES else "mine"
    filters = {"light": request.args.get("light") if request.args.get("light") in LIGHTS else None,
               "lane": request.args.get("lane") or None, "case": request.args.get("case") or None,
               "page": request.args.get("page", type=int) or 1,
               "per_page": request.args.get("per_page", type=int) or 50}
    listing = tasks.list_tasks(runtime(), current_caller(), scope, {k: v for k, v in filters.items() if v})
    return page("tasks.html", listing=listing, scope=scope, filters=filters, lights=LIGHTS)


bp.add_url_rule("/", "tasks", tasks_page)


def _task_page(task_id: str, status: int = 200, errors: dict | None = None, values=None):
    task = cases.get_task(runtime(), task_id, user=current_caller())
    return page("task.html", status, task=task, errors=errors or {}, values=values or {})


@bp.route("/tasks/<task_id>", methods=["GET"])
def task_page(task_id):
    return _task_page(task_id)


@bp.route("/tasks/<task_id>/claim", methods=["POST"])
def claim(task_id):
    tasks.claim_task(runtime(), task_id, current_caller())
    return redirect(url_for("web.task_page", task_id=task_id))


@bp.route("/tasks/<task_id>/unclaim", methods=["POST"])
def unclaim(task_id):
    tasks.unclaim_task(runtime(), task_id, current_caller())
    return redirect(url_for("web.task_page", task_id=task_id))


@bp.route("/tasks/<task_id>/delegate", methods=["POST"])
def delegate(task_id):
    try:
        tasks.delegate_task(runtime(), task_id, current_caller(), request.form.get("username", "").strip())
    except InvalidInput as exc:
        return _task_page(task_id, exc.status, dotted(exc.errors))
    return redirect(url_for("web.task_page", task_id=task_id))


@bp.route("/tasks/<task_id>/complete", methods=["POST"])
def complete(task_id):
    form = cases.get_task(runtime(), task_id, user=current_caller())["form"]
    try:
        case = cases.complete_task(runtime(), task_id, task_data(form, request.form), user=current_caller())
    except InvalidInput as exc:
        return _task_page(task_id, exc.status, dotted(exc.errors), request.form)
    return redirect(url_for("web.case_page", case_no=case["case_no"], done=task_id))


@bp.route("/intake", methods=["GET", "POST"])
def intake():
    from api.cases import IntakeIn

    categories = sorted(runtime().tables.routes.values(), key=lambda r: r.category)
    if request.method == "GET":
        return page("intake.html", categories=categories, channels=CHANNELS, errors={}, values={})
    try:
        loaded = IntakeIn().load(intake_data(request.form))
        case = cases.start_case(runtime(), loaded, user=current_caller())
    except ValidationError as exc:
        return page("intake.html", 422, categories=categories, channels=CHANNELS,
                    errors=_flat(dotted(exc.messages)), values=request.form)
    except InvalidInput as exc:
        return page("intake.html", exc.status, categories=categories, channels=CHANNELS,
                    errors=_flat(dotted(exc.errors)), values=request.form, message=exc.message)
    return page("registered.html", 201, case=case)


def _flat(errors: dict) -> dict:
    """reporter.phone -> reporter_phone, location.address -> address: the intake form's box names."""
    out = {}
    for key, messages in errors.items():
        box = key.replace("location.", "").replace("reporter.", "reporter_")
        out.setdefault(box, []).extend(messages)
    return out


@bp.route("/cases", methods=["GET"])
def cases_page():
    filters = {"q": (request.args.get("q") or "").strip() or None,
               "status": request.args.get("status") or None,
               "overdue": True if request.args.get("overdue") == "1" else None,
               "page": request.args.get("page", type=int) or 1, "per_page": 50}
    listing = search.list_cases(runtime(), current_caller(), {k: v for k, v in filters.items() if v is not None})
    return page("cases.html", listing=listing, filters=filters, statuses=[s.value for s in CaseStatus])


@bp.route("/cases/<case_no>", methods=["GET"])
def case_page(case_no, status: int = 200, comment_errors: dict | None = None, approval_errors: dict | None = None):
    return page("case.html", status, **case_file(runtime(), case_no, user=current_caller()),
                comment_errors=comment_errors or {}, approval_errors=approval_errors or {})


@bp.route("/cases/<case_no>/comments", methods=["POST"])
def comment(case_no):
    try:
        comments.add_comment(runtime(), case_no, request.form.get("body", ""), current_caller())
    except InvalidInput as exc:
        return case_page(case_no, exc.status, dotted(exc.errors))
    return redirect(url_for("web.case_page", case_no=case_no) + "#comments")
