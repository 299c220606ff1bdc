"""Marshmallow schemas shared by the API's blueprints: the error body, cases, tasks, pages.

Request schemas derive from `RequestSchema`, which refuses text no database
can store (NUL characters, lone surrogates) anywhere in the input, so bad
input is a 422 naming the field rather than a 500 from the driver. Response
schemas describe the plain dicts the engine's views return; their instants
are ISO 8601 strings already.
"""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, pre_load, validate

from engine.rules.status import CaseStatus

MAX_PAGE = 100_000


def _bad_text(value) -> bool:
    if "\x00" in value:
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _scan(value, errors: dict) -> None:
    """Name each top-level field whose value holds unstorable text, at any depth (iteratively)."""
    stack = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if _bad_text(item):
                errors.setdefault(path or "_schema", []).append("must be text without NUL characters or lone "
                                                                 "surrogates")
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and _bad_text(key):
                    errors.setdefault(path or "_schema", []).append("has a key that is not valid text")
                else:
                    stack.append((child, path or str(key)))
        elif isinstance(item, (list, tuple)):
            stack.extend((child, path) for child in item)


class RequestSchema(Schema):
    """Base of every request schema: unknown fields are refused, text must be storable."""

    @pre_load(pass_collection=True)
    def _storable_text(self, data, **_kwargs):
        errors: dict = {}
        _scan(dict(data) if hasattr(data, "keys") else data, errors)
        if errors:
            raise ValidationError(errors)
        return data


def instant(**kwargs):
    """An ISO 8601 instant (the engine's views already render them as strings)."""
    return fields.String(allow_none=True, metadata={"format": "date-time", **kwargs.pop("metadata", {})}, **kwargs)


class ErrorSchema(Schema):
    """The one error body: a stable code, a message, and the bad fields with their problems."""

    code = fields.String(required=True, metadata={"example": "invalid_input"})
    message = fields.String(required=True)
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), required=True)
    # Details some errors add (engine.errors): each optional, named by the error that carries it.
    element = fields.String(metadata={"description": "the BPMN element at fault"})
    assignee = fields.String(allow_none=True, metadata={"description": "task_claimed: who holds the task"})
    task_state = fields.String(metadata={"description": "task_not_ready: the task's state"})
    current_version = fields.Integer(metadata={"description": "stale_version: the case's version now"})
    handler = fields.String(metadata={"description": "handler_failed: the service-task operation"})
    notes = fields.List(fields.String(), metadata={"description": "engine_error: the engine's notes"})
    problems = fields.List(fields.Dict(), metadata={"description": "definition_invalid: file, element, "
                                                                   "line, reason and fix of each problem"})


class PageQuery(RequestSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(1, MAX_PAGE))
    per_page = fields.Integer(load_default=20, validate=validate.Range(1, 100))


class ReporterOut(Schema):
    name = fields.String()
    phone = fields.String(metadata={"description": "masked (138****5678) outside the accepting community "
                                                   "and the handling unit"})
    id_no = fields.String(allow_none=True, metadata={"description": "masked like the phone"})


class LocationOut(Schema):
    address = fields.String()
    lat = fields.Float(allow_none=True)
    lon = fields.Float(allow_none=True)
    grid = fields.String(allow_none=True)


class ReplyOut(Schema):
    text = fields.String()
    unit = fields.String(allow_none=True)
    at = instant()


class TaskOut(Schema):
    id = fields.String(metadata={"format": "uuid"})
    case_no = fields.String(allow_none=True)
    element = fields.String(metadata={"description": "the BPMN user task id"})
    name = fields.String()
    lane = fields.String(allow_none=True)
    role = fields.String(allow_none=True)
    unit = fields.String(allow_none=True)
    state = fields.String(metadata={"enum": ["ready", "completed", "cancelled"]})
    assignee = fields.String(allow_none=True)
    created_at = instant()
    ended_at = instant()
    ended_by = fields.String(allow_none=True)
    due_at = instant()
    warn_at = instant()
    light = fields.String(allow_none=True, metadata={"enum": ["green", "yellow", "red"],
                                                     "description": "red: past due; yellow: past the warning"})
    deadline_estimated = fields.Boolean(metadata={
        "description": "the deadline counts days of a year with no published holiday arrangement "
                       "(weekends only): it may move once the arrangement is entered"})


class CaseOut(Schema):
    case_no = fields.String(metadata={"example": "2025-000001"})
    title = fields.String()
    description = fields.String()
    category = fields.String()
    channel = fields.String()
    reporter = fields.Nested(ReporterOut)
    location = fields.Nested(LocationOut)
    community = fields.String()
    status = fields.String(metadata={"enum": [s.value for s in CaseStatus]})
    level = fields.String()
    current_unit = fields.String(allow_none=True)
    routed_unit = fields.String(allow_none=True)
    first_handling_unit = fields.String(allow_none=True, metadata={
        "description": "the unit that signed for the case and leads it (首办单位)"})
    co_units = fields.List(fields.String(), metadata={"description": "the co-handling units brought in (协办单位)"})
    transfers = fields.Integer(metadata={"description": "how often the case was transferred after a refusal (转办)"})
    time_limit_class = fields.String(allow_none=True)
    reply = fields.Nested(ReplyOut, allow_none=True)
    rating = fields.String(allow_none=True)
    version = fields.Integer()
    created_at = instant()
    reported_at = instant(metadata={"description": "when the dispute was reported (default: the intake)"})
    updated_at = instant()
    closed_at = instant()
    open_tasks = fields.List(fields.Nested(TaskOut))
    due_at = instant()
    warn_at = instant()
    light = fields.String(allow_none=True, metadata={"enum": ["green", "yellow", "red"]})
    overdue = fields.Boolean(metadata={"description": "an open task is past its due instant"})
    deadline_estimated = fields.Boolean()


class CaseSummaryOut(Schema):
    case_no = fields.String()
    title = fields.String()
    category = fields.String()
    channel = fields.String()
    reporter = fields.Nested(ReporterOut)
    community = fields.String()
    status = fields.String()
    level = fields.String()
    current_unit = fields.String(allow_none=True)
    routed_unit = fields.String(allow_none=True)
    created_at = instant()
    reported_at = instant()
    updated_at = instant()
    closed_at = instant()
    # The case's deadline flags, derived from its open tasks (its most urgent one's clock).
    due_at = instant()
    warn_at = instant()
    light = fields.String(allow_none=True, metadata={"enum": ["green", "yellow", "red"]})
    overdue = fields.Boolean(metadata={"description": "an open task is past its due instant"})
    deadline_estimated = fields.Boolean()


class FormFieldOut(Schema):
    name = fields.String()
    type = fields.String(metadata={"enum": ["string", "text", "int", "bool", "enum"]})
    required = fields.Boolean()
    choices = fields.List(fields.String())
    required_if = fields.Dict()


class TaskDetailOut(TaskOut):
    form = fields.List(fields.Nested(FormFieldOut))
    shown = fields.Dict(metadata={"description": "case data the step shows beside its form (its BPMN `show` "
                                                 "property), e.g. the co-handlers' results to consolidate"})
    overdue = fields.Boolean()
    case = fields.Nested(CaseSummaryOut)
    actions = fields.List(fields.String(), metadata={"description": "what the caller may do now: "
                                                                    "claim, complete, unclaim, delegate"})


class TaskListItemOut(TaskOut):
    overdue = fields.Boolean()
    case = fields.Nested(CaseSummaryOut)


class _Page(Schema):
    total = fields.Integer(metadata={"description": "rows matching; exact up to LIST_COUNT_CAP (10,000), "
                                                    "past it an estimate (then total_estimated is true)"})
    total_estimated = fields.Boolean(metadata={"description": "total is the database's estimate, not a count"})
    page = fields.Integer()
    per_page = fields.Integer()


class CasePageOut(_Page):
    items = fields.List(fields.Nested(CaseSummaryOut))


class TaskPageOut(_Page):
    items = fields.List(fields.Nested(TaskListItemOut))
