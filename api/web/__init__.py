"""The web console (联动化解工作平台): server-rendered pages over the same service functions as the API.

Jinja templates in `templates/`, the one stylesheet and a few lines of plain
JavaScript in `static/` (served by the app: no CDN, no build step, so it
works on an offline government network). Sign-in is by username and password
into a Flask session cookie (HttpOnly, SameSite=Lax, Secure when
CONSOLE_SECURE_COOKIE=1, expiring after CONSOLE_SESSION_HOURS); every form
carries a CSRF token (Flask-WTF) while the JSON API keeps its bearer tokens.
Chinese by default, English with `?lang=en` (Flask-Babel picks the locale).

Settings (app config, else environment, else default):
  CONSOLE_SESSION_HOURS   hours a console session lasts              [8]
  CONSOLE_SECURE_COOKIE   1: the session cookie only over HTTPS       [0]
"""
from __future__ import annotations

import os
from datetime import datetime, timedelta

from flask import current_app, redirect, url_for
from flask_babel import Babel

from api.web import boards, pages, procedures, signin  # noqa: F401  (the views register on the blueprint)
from api.web.base import bp, csrf
from api.web.i18n import label_of, select_locale, t


def _when(value, fmt: str = "%Y-%m-%d %H:%M"):
    """An ISO instant as local (case time zone) wall time for people."""
    if not value:
        return ""
    try:
        instant = datetime.fromisoformat(value) if isinstance(value, str) else value
    except ValueError:
        return value
    return instant.astimezone(current_app.extensions["dispute_runtime"].tz).strftime(fmt) if instant.tzinfo \
        else instant.strftime(fmt)


def init_app(app) -> None:
    app.config.setdefault("CONSOLE_SESSION_HOURS", float(os.environ.get("CONSOLE_SESSION_HOURS", "8")))
    app.config.setdefault("CONSOLE_SECURE_COOKIE", os.environ.get("CONSOLE_SECURE_COOKIE", "0") == "1")
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=app.config["CONSOLE_SESSION_HOURS"])
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = app.config.get("SESSION_COOKIE_SAMESITE") or "Lax"
    app.config["SESSION_COOKIE_SECURE"] = bool(app.config["CONSOLE_SECURE_COOKIE"])
    # CSRF is checked by the console's own hook (api.web.base), not on the JSON API, which has no cookies.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # the token lives as long as the session
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "zh")
    csrf.init_app(app)
    Babel(app, locale_selector=select_locale)
    app.jinja_env.filters["when"] = _when
    app.jinja_env.globals.update(t=t, label_of=label_of)  # also inside imported macros
    app.register_blueprint(bp)
    app.add_url_rule("/", "console_root", lambda: redirect(url_for("web.signin")))
