"""Sign-in and sign-out: a password form, the session cookie, rate-limited failures."""
from __future__ import annotations

from flask import redirect, request, session, url_for

from api.auth import runtime
from api.limits import FAILED_SIGNIN, RateLimited
from api.web.base import bp, current_caller, page
from api.web.i18n import t
from engine.errors import Unauthorized
from engine.services.signin import sign_in


def _next_page() -> str:
    wanted = request.values.get("next") or ""
    # Only a page of this console: never an absolute or protocol-relative address (no open redirect).
    return wanted if wanted.startswith("/console/") and not wanted.startswith("//") else url_for("web.tasks")


@bp.route("/signin", methods=["GET", "POST"])
def signin():
    if request.method == "GET":
        if current_caller() is not None:
            return redirect(_next_page())
        return page("signin.html", next=request.args.get("next", ""))
    username = request.form.get("username", "").strip()
    try:
        FAILED_SIGNIN.check()
    except RateLimited as exc:
        body, status = page("signin.html", 429, error=t("too_many"), username=username, next=_next_page())
        return body, status, {"Retry-After": str(getattr(exc, "retry_after", None) or 60)}
    try:
        caller, stamp = sign_in(runtime(), username, request.form.get("password", ""))
    except Unauthorized:
        FAILED_SIGNIN.spend()
        return page("signin.html", 401, error=t("bad_credentials"), username=username, next=_next_page())
    session.clear()
    session.permanent = True
    session["user"], session["stamp"] = caller.username, stamp
    return redirect(_next_page())


@bp.route("/signout", methods=["POST"])
def signout():
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    return redirect(url_for("web.signin"))


@bp.route("/language/<lang>", methods=["GET"])
def language(lang):
    from api.web.i18n import LANGUAGES

    if lang in LANGUAGES:
        session["lang"] = lang
    back = request.referrer or ""
    return redirect(back if back.startswith(request.host_url) else url_for("web.signin"))
