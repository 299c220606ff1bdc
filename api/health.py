"""GET /healthz: the process is up and the database answers (no token needed); the instance's clock.

Every response carries the instance's time in `X-Clock` (ISO 8601 with the
offset of the application's time zone) and, when the clock runs sped up (a
demo or training instance, `--speed N`), its speed in `X-Clock-Speed`.
"""
from marshmallow import Schema, fields

from api.auth import runtime
from api.parsing import Blueprint
from engine import clock
from engine.services.instance import health

blp = Blueprint("health", __name__, description="Liveness of the process and its database")


class HealthOut(Schema):
    status = fields.String(metadata={"example": "ok"})
    database = fields.String(metadata={"example": "postgresql"})
    clock = fields.String(metadata={"format": "date-time", "description": "the instance's time"})
    clock_speed = fields.Float(metadata={"description": "how many times faster than real time the clock runs"})
    purpose = fields.String(metadata={"enum": ["production", "demo", "training"]})


@blp.route("/healthz", methods=["GET"])
@blp.doc(security=[])
@blp.response(200, HealthOut)
def healthz():
    return health(runtime())


@blp.after_app_request
def clock_headers(response):
    current = clock.get_clock()
    response.headers["X-Clock"] = current.now().astimezone(runtime().tz).isoformat()
    if current.speed != 1:
        response.headers["X-Clock-Speed"] = f"{current.speed:g}"
    return response
