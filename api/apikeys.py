"""/api/v1/admin/apikeys: the client systems and their API keys (administrators only)."""
from __future__ import annotations

from flask.views import MethodView
from marshmallow import Schema, fields, validate

from api.auth import caller, require_token, runtime
from api.parsing import Blueprint
from api.schemas import RequestSchema
from engine.rules.access import require_admin
from engine.rules.intake import CHANNELS
from engine.services import clients

blp = Blueprint("apikeys", __name__, url_prefix="/api/v1/admin/apikeys",
                description="Client systems and their API keys (接入系统)")
blp.before_request(require_token)


class ClientIn(RequestSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    kind = fields.String(required=True, validate=validate.OneOf(sorted(clients.KINDS)))
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    callback_url = fields.String(load_default=None, allow_none=True)
    callback_secret = fields.String(load_default=None, allow_none=True, load_only=True)


class ClientOut(Schema):
    id = fields.Integer()
    name = fields.String()
    kind = fields.String()
    channel = fields.String()
    key_prefix = fields.String()
    callback_url = fields.String(allow_none=True)
    has_callback_secret = fields.Boolean()
    revoked = fields.Boolean()
    created_at = fields.String()
    created_by = fields.String()
    last_used_at = fields.String(allow_none=True)


class ClientCreatedOut(ClientOut):
    api_key = fields.String(metadata={"description": "shown once; only its hash is stored"})


@blp.route("")
class ApiKeys(MethodView):
    @blp.response(200, ClientOut(many=True))
    def get(self):
        """The client systems (their keys are never shown again)"""
        require_admin(caller())
        return clients.list_clients(runtime())

    @blp.arguments(ClientIn)
    @blp.response(201, ClientCreatedOut)
    def post(self, body):
        """Register a client system and issue its API key"""
        require_admin(caller())
        return clients.create_client(runtime(), body["name"], body["kind"], body["channel"],
                                     callback_url=body["callback_url"], callback_secret=body["callback_secret"],
                                     created_by=caller().username)


@blp.route("/<client>/revoke", methods=["POST"])
@blp.response(200, ClientOut)
@blp.alt_response(404, response="NOT_FOUND")
def revoke(client):
    """Revoke a client system's key (by id or name)"""
    require_admin(caller())
    return clients.revoke_client(runtime(), client)
