"""GET /healthz: the process is up and the database answers (no token needed)."""
from marshmallow import Schema, fields

from api.auth import runtime
from api.parsing import Blueprint
from engine.runtime import database_health

blp = Blueprint("health", __name__, description="Liveness of the process and its database")


class HealthOut(Schema):
    status = fields.String(metadata={"example": "ok"})
    database = fields.String(metadata={"example": "postgresql"})


@blp.route("/healthz", methods=["GET"])
@blp.doc(security=[])
@blp.response(200, HealthOut)
def healthz():
    return database_health(runtime())
