"""/api/v1/processes: the deployed process definitions, their versions and stored BPMN."""
from __future__ import annotations

from flask import Response
from marshmallow import Schema, fields

from api.auth import require_token, runtime
from api.parsing import Blueprint
from engine import processes

blp = Blueprint("processes", __name__, url_prefix="/api/v1/processes", description="Process definitions")
blp.before_request(require_token)


class VersionOut(Schema):
    version = fields.Integer()
    name = fields.String()
    sha256 = fields.String()
    source = fields.String()
    deployed_at = fields.String(metadata={"format": "date-time"})
    deployed_by = fields.String()


class ProcessOut(Schema):
    process_id = fields.String()
    name = fields.String()
    latest = fields.Integer()
    versions = fields.List(fields.Nested(VersionOut))


@blp.route("", methods=["GET"])
@blp.response(200, ProcessOut(many=True))
def list_processes():
    """The deployed processes and their versions"""
    return processes.list_processes(runtime())


@blp.route("/<process_id>/versions/<int:n>/bpmn", methods=["GET"])
@blp.response(200, {"type": "string"}, content_type="application/xml", description="The BPMN XML as deployed")
@blp.alt_response(404, response="NOT_FOUND")
def bpmn(process_id, n):
    """The stored BPMN XML of one version"""
    return Response(processes.definition_source(runtime(), process_id, n), mimetype="application/xml")
