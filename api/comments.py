"""/api/v1/cases/{case_no}/comments: messages between the units on a case (沟通协作)."""
from __future__ import annotations

from flask.views import MethodView
from marshmallow import Schema, fields, validate

from api.auth import caller, require_token, runtime
from api.parsing import Blueprint
from api.schemas import RequestSchema
from engine.services import comments

blp = Blueprint("comments", __name__, url_prefix="/api/v1/cases", description="Messages on a case (沟通协作)")
blp.before_request(require_token)


class CommentIn(RequestSchema):
    body = fields.String(required=True, validate=validate.Length(min=1, max=comments.MAX_BODY))


class CommentOut(Schema):
    id = fields.Integer()
    case_no = fields.String()
    author = fields.String()
    unit = fields.String()
    body = fields.String()
    created_at = fields.String(metadata={"format": "date-time"})


@blp.route("/<case_no>/comments")
class Comments(MethodView):
    @blp.response(200, CommentOut(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, case_no):
        """The messages on a case, oldest first"""
        return comments.list_comments(runtime(), case_no, caller())

    @blp.arguments(CommentIn)
    @blp.response(201, CommentOut)
    @blp.alt_response(404, response="NOT_FOUND")
    def post(self, body, case_no):
        """Post a message on a case"""
        return comments.add_comment(runtime(), case_no, body["body"], caller())
