"""/api/v1/processes: validate, deploy and compare process definitions; their versions and stored BPMN.

Validating and deploying take BPMN/DMN files as a multipart upload (field
`file`, once or more) and need the process designer role. A validation is a
verdict, 200 whether the files are valid or not; a deployment of invalid
files is a 422 listing the same problems, and stores nothing.
"""
from __future__ import annotations

import re

from flask import Response
from flask_smorest.fields import Upload
from marshmallow import Schema, fields, validate

from api.auth import caller, require_token, runtime
from api.parsing import Blueprint
from engine.core.definitions import MAX_FILE_BYTES
from engine.services import processes

blp = Blueprint("processes", __name__, url_prefix="/api/v1/processes", description="Process definitions")
blp.before_request(require_token)
MAX_FILES = 20


class FilesIn(Schema):
    file = fields.List(Upload(), required=True, validate=validate.Length(min=1, max=MAX_FILES),
                       metadata={"description": "BPMN (.bpmn) or DMN (.dmn) files"})


class ProblemOut(Schema):
    file = fields.String()
    element = fields.String(allow_none=True)
    line = fields.Integer(allow_none=True)
    reason = fields.String()
    fix = fields.String()


class FileVerdictOut(Schema):
    file = fields.String()
    problems = fields.List(fields.Nested(ProblemOut))


class VerdictOut(Schema):
    valid = fields.Boolean()
    files = fields.List(fields.Nested(FileVerdictOut))


class VersionOut(Schema):
    version = fields.Integer()
    name = fields.String()
    sha256 = fields.String()
    source = fields.String()
    deployed_at = fields.String(metadata={"format": "date-time"})
    deployed_by = fields.String(allow_none=True)
    calls = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={
        "description": "the processes its call activities call, each at the version this version embeds"})


class DeployedOut(VersionOut):
    process_id = fields.String()
    new = fields.Boolean(metadata={"description": "false when the source equals a stored version"})


class ProcessOut(Schema):
    process_id = fields.String()
    name = fields.String()
    latest = fields.Integer()
    versions = fields.List(fields.Nested(VersionOut))


class DiffIn(Schema):
    from_ = fields.Integer(data_key="from", required=True, validate=validate.Range(1, 2 ** 31 - 1))
    to = fields.Integer(required=True, validate=validate.Range(1, 2 ** 31 - 1))


class ElementOut(Schema):
    element = fields.String()
    type = fields.String()
    name = fields.String(allow_none=True)


class ChangeOut(Schema):
    field = fields.String()
    from_ = fields.Raw(data_key="from", attribute="from", allow_none=True)
    to = fields.Raw(allow_none=True)


class ChangedOut(ElementOut):
    changes = fields.List(fields.Nested(ChangeOut))


class DiffOut(Schema):
    process_id = fields.String()
    from_ = fields.Integer(data_key="from", attribute="from")
    to = fields.Integer()
    added = fields.List(fields.Nested(ElementOut))
    removed = fields.List(fields.Nested(ElementOut))
    changed = fields.List(fields.Nested(ChangedOut))
    calls = fields.List(fields.Nested(lambda: CalledDiffOut()), metadata={
        "description": "the called processes whose pinned version differs, with their own changes"})


class CalledDiffOut(Schema):
    process_id = fields.String()
    from_ = fields.Integer(data_key="from", attribute="from", allow_none=True)
    to = fields.Integer(allow_none=True)
    added = fields.List(fields.Nested(ElementOut))
    removed = fields.List(fields.Nested(ElementOut))
    changed = fields.List(fields.Nested(ChangedOut))


def _sources(uploads) -> dict[str, bytes]:
    """File name → bytes; names made safe to store and unique, contents capped just above the limit."""
    out: dict[str, bytes] = {}
    for i, upload in enumerate(uploads, 1):
        name = re.sub(r"[^\w.\- ]", "_", (getattr(upload, "filename", None) or "").rsplit("/", 1)[-1])[-100:]
        name = name.strip() or f"upload{i}.bpmn"
        while name in out:
            name = f"{i}-{name}"
        out[name] = upload.stream.read(MAX_FILE_BYTES + 1) if hasattr(upload, "stream") else b""
    return out


@blp.route("", methods=["GET"])
@blp.response(200, ProcessOut(many=True))
def list_processes():
    """The deployed processes and their versions"""
    return processes.list_processes(runtime())


@blp.route("/validate", methods=["POST"])
@blp.arguments(FilesIn, location="files")
@blp.response(200, VerdictOut)
@blp.alt_response(403, response="FORBIDDEN")
def validate_files(args):
    """Check BPMN/DMN files and answer each file's problems (process designers)"""
    return processes.validate_files(runtime(), _sources(args["file"]), user=caller())


@blp.route("", methods=["POST"])
@blp.arguments(FilesIn, location="files")
@blp.response(201, DeployedOut(many=True))
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(422, response="UNPROCESSABLE_ENTITY", description="the files have problems; nothing stored")
def deploy(args):
    """Store a new immutable version of each changed process, only when every file is valid (process designers)"""
    return processes.deploy_sources(runtime(), _sources(args["file"]), user=caller())


@blp.route("/<process_id>/versions", methods=["GET"])
@blp.response(200, VersionOut(many=True))
@blp.alt_response(404, response="NOT_FOUND")
def versions(process_id):
    """The versions of one process, with who deployed each and when"""
    return processes.list_versions(runtime(), process_id)


@blp.route("/<process_id>/diff", methods=["GET"])
@blp.arguments(DiffIn, location="query")
@blp.response(200, DiffOut)
@blp.alt_response(404, response="NOT_FOUND")
def diff(args, process_id):
    """The elements added, removed and changed between two versions"""
    return processes.diff_versions(runtime(), process_id, args["from_"], args["to"])


@blp.route("/<process_id>/versions/<int:n>/bpmn", methods=["GET"])
@blp.response(200, {"type": "string"}, content_type="application/xml", description="The BPMN XML as deployed")
@blp.alt_response(404, response="NOT_FOUND")
def bpmn(process_id, n):
    """The stored BPMN XML of one version"""
    return Response(processes.definition_source(runtime(), process_id, n), mimetype="application/xml")
