"""Swagger UI's own assets, served from the `swagger-ui-bundle` package: /api/docs loads nothing from outside.

A government network may be offline; the UI page (flask-smorest's template,
at /api/docs) takes its script and styles from OPENAPI_SWAGGER_UI_URL, which
points here, and its validator badge (an image from validator.swagger.io) is
switched off.
"""
from __future__ import annotations

from flask import Blueprint, send_from_directory
from swagger_ui_bundle import swagger_ui_path

ASSETS_URL = "/api/docs/assets/"

blp = Blueprint("swagger_ui_assets", __name__)


@blp.route(f"{ASSETS_URL}<path:filename>")
def asset(filename):
    return send_from_directory(str(swagger_ui_path), filename, max_age=86400)
