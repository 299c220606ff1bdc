"""The console's blueprint, its signed-in caller, its languages and its error pages.

Every page runs `_load_caller`: the caller comes from the Flask session cookie
(username + the stamp of the password hash it signed in with,
engine.services.signin), never from a bearer token, and every POST is checked
for its CSRF token first (Flask-WTF; the JSON API is not checked: it has no
cookies to ride on). A domain error raised by a service is shown as a page
with the same status the JSON API would answer (404 stays "not found", so a
page never tells more than the API would).
"""
from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_wtf.csrf import CSRFError, CSRFProtect

from api.auth import runtime
from api.web.i18n import LANGUAGES, label_of, t
from engine.errors import CaseError, Unauthorized
from engine.services.signin import session_caller

bp = Blueprint("web", __name__, url_prefix="/console", template_folder="templates",
               static_folder="static", static_url_path="/static")
csrf = CSRFProtect()
PUBLIC = {"web.signin", "web.static", "web.track", "web.language"}


def current_caller():
    return g.get("web_caller")


@bp.before_request
def _load_caller():
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()
    g.web_caller = None
    if session.get("user"):
        try:
            g.web_caller = session_caller(runtime(), session.get("user"), session.get("stamp"))
        except Unauthorized:
            session.clear()
    if g.web_caller is None and request.endpoint not in PUBLIC:
        return redirect(url_for("web.signin", next=request.full_path if request.method == "GET" else None))
    return None


@bp.app_context_processor
def _globals():
    return {"t": t, "label_of": label_of, "lang": str(get_locale()), "languages": LANGUAGES,
            "me": g.get("web_caller")}


def page(template: str, status: int = 200, **context):
    return render_template(template, **context), status


@bp.errorhandler(CSRFError)
def _csrf_refused(exc):
    return page("error.html", 400, title=t("csrf_refused"), message=t("csrf_refused_detail"))


@bp.errorhandler(CaseError)
def _domain_error(exc: CaseError):
    if exc.status == 401:
        session.clear()
        return redirect(url_for("web.signin"))
    title = {403: t("forbidden"), 404: t("not_found"), 409: t("conflict"), 429: t("rate_limited")}.get(
        exc.status, t("error"))
    return page("error.html", exc.status, title=title, message=exc.message, errors=exc.to_dict().get("errors") or {})
