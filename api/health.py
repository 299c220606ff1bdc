"""GET /healthz: the process is up and the database answers."""
from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    rt = current_app.extensions["dispute_runtime"]
    with rt.db.read() as session:
        session.execute(text("SELECT 1"))
    return jsonify(status="ok", database=rt.db.engine.dialect.name)
