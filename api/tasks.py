"""/api/v1/tasks: the task lists, one task, and claim, unclaim, delegate, complete."""
from __future__ import annotations

from marshmallow import fields, validate

from api.auth import caller, require_token, runtime
from api.parsing import Blueprint
from api.schemas import CaseOut, PageQuery, RequestSchema, TaskDetailOut, TaskPageOut
from engine.services import cases, tasks

blp = Blueprint("tasks", __name__, url_prefix="/api/v1/tasks", description="User tasks (待办)")
blp.before_request(require_token)


class TaskListQuery(PageQuery):
    scope = fields.String(load_default="candidate", validate=validate.OneOf(tasks.SCOPES),
                          metadata={"description": "mine: tasks the caller holds; candidate: tasks the caller "
                                                   "may work on in their unit (claimed or not)"})
    case = fields.String(validate=validate.Length(min=1, max=20), metadata={"description": "a case number"})
    lane = fields.String(validate=validate.Length(min=1, max=100))
    due_before = fields.DateTime(metadata={"description": "without an offset, Asia/Shanghai time"})
    light = fields.String(validate=validate.OneOf(["green", "yellow", "red"]),
                          metadata={"description": "red: past due; yellow: past the warning point; green: neither"})
    overdue = fields.Boolean(metadata={"description": "true: past due (red); false: not past due"})


class DelegateIn(RequestSchema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=100))


class CompleteIn(RequestSchema):
    data = fields.Dict(keys=fields.String(), required=True, metadata={"description": "the task's form fields"})
    version = fields.Integer(metadata={"description": "the case version the form was filled against; "
                                                      "a different current version is a 409"})


@blp.route("", methods=["GET"])
@blp.arguments(TaskListQuery, location="query")
@blp.response(200, TaskPageOut)
def list_tasks(query):
    """The caller's tasks (scope=mine) or the tasks they are a candidate for (scope=candidate)"""
    scope = query.pop("scope")
    return tasks.list_tasks(runtime(), caller(), scope, query)


@blp.route("/<task_id>", methods=["GET"])
@blp.response(200, TaskDetailOut)
@blp.alt_response(404, response="NOT_FOUND")
def get_task(task_id):
    """One task: its form fields, deadline, case summary and what the caller may do with it"""
    return cases.get_task(runtime(), task_id, user=caller())


@blp.route("/<task_id>/claim", methods=["POST"])
@blp.response(200, TaskDetailOut)
@blp.alt_response(409, response="CONFLICT")
def claim(task_id):
    """Claim a task (atomic: of two claimers one gets 409 naming the holder)"""
    return tasks.claim_task(runtime(), task_id, caller())


@blp.route("/<task_id>/unclaim", methods=["POST"])
@blp.response(200, TaskDetailOut)
@blp.alt_response(409, response="CONFLICT")
def unclaim(task_id):
    """Release a task (its holder, or a dispatcher or leader of its unit)"""
    return tasks.unclaim_task(runtime(), task_id, caller())


@blp.route("/<task_id>/delegate", methods=["POST"])
@blp.arguments(DelegateIn)
@blp.response(200, TaskDetailOut)
@blp.alt_response(403, response="FORBIDDEN")
def delegate(body, task_id):
    """Hand a task to another candidate of its unit (a dispatcher or leader of that unit)"""
    return tasks.delegate_task(runtime(), task_id, caller(), body["username"])


@blp.route("/<task_id>/complete", methods=["POST"])
@blp.arguments(CompleteIn)
@blp.response(200, CaseOut)
@blp.alt_response(409, response="CONFLICT")
def complete(body, task_id):
    """Complete a task with its form (claims it first when unclaimed); returns the case"""
    return cases.complete_task(runtime(), task_id, body["data"], expected_version=body.get("version"),
                               user=caller())
