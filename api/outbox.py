"""/api/v1/outbox and /api/v1/cases/{case_no}/notifications: notifications and their delivery."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.auth import caller, require_token, runtime
from api.parsing import Blueprint
from api.schemas import PageQuery
from engine.services import notifications
from engine.store.outbox_state import MessageState

blp = Blueprint("outbox", __name__, url_prefix="/api/v1", description="Notifications and their delivery (通知)")
blp.before_request(require_token)


class MessageOut(Schema):
    id = fields.Integer()
    case_no = fields.String(allow_none=True)
    kind = fields.String(metadata={"description": "the template: arrival, yellow, red, supervision, reply_ready, "
                                                  "citizen_reply, tracking_code, notice"})
    channel = fields.String(metadata={"description": "sms, email, webhook (auto: not resolved yet)"})
    recipient_kind = fields.String(metadata={"description": "unit, leader, user, citizen"})
    recipient = fields.String(metadata={"description": "a citizen's phone masked outside the personal-data rule"})
    address = fields.String(allow_none=True, metadata={"description": "where it was sent; masked like the recipient"})
    text = fields.String()
    status = fields.String(metadata={"description": ", ".join(s.value for s in MessageState)})
    attempts = fields.Integer()
    idempotency_key = fields.String()
    created_at = fields.String(metadata={"format": "date-time"})
    sent_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    next_attempt_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    last_error = fields.String(allow_none=True)


class MessagePageOut(Schema):
    items = fields.List(fields.Nested(MessageOut))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()


class OutboxQuery(PageQuery):
    status = fields.String(validate=validate.OneOf([s.value for s in MessageState]))
    channel = fields.String(validate=validate.OneOf(["sms", "email", "webhook", "auto"]))
    case = fields.String(validate=validate.Length(min=1, max=20), metadata={"description": "a case number"})


@blp.route("/cases/<case_no>/notifications", methods=["GET"])
@blp.response(200, MessageOut(many=True))
@blp.alt_response(404, response="NOT_FOUND")
def case_notifications(case_no):
    """The notifications of a case and their delivery status (scoped like the case)"""
    return notifications.case_notifications(runtime(), case_no, user=caller())


@blp.route("/outbox", methods=["GET"])
@blp.arguments(OutboxQuery, location="query")
@blp.response(200, MessagePageOut)
@blp.alt_response(403, response="FORBIDDEN")
def list_outbox(filters):
    """Every notification, newest first (administrators)"""
    return notifications.list_outbox(runtime(), caller(), filters)


@blp.route("/outbox/<int:message_id>/retry", methods=["POST"])
@blp.response(200, MessageOut)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def retry_message(message_id):
    """Send a failed or dead notification again (administrators)"""
    return notifications.retry_message(runtime(), message_id, caller())
