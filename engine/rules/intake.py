"""The intake form of one-door acceptance (一门受理), as a marshmallow schema.

The API loads requests with it and the engine validates with it again, so a
case started from the CLI, a benchmark or a test obeys the same rules.
"""
from __future__ import annotations

from datetime import datetime, timezone

from marshmallow import Schema, ValidationError, fields, validate, validates

CHANNELS = ("walk_in", "hotline_12345", "hotline_12348", "sms", "web", "grid_worker", "police_110", "screening")
PHONE = validate.Regexp(r"^\+?[0-9][0-9\- ]{5,19}$", error="must be a phone number of 6 to 20 digits")
# Paper records entered late go back years at most; nothing was reported before this system's era.
EARLIEST_REPORT = datetime(2000, 1, 1, tzinfo=timezone.utc)
ID_NO = validate.Regexp(r"^[0-9]{17}[0-9Xx]$", error="must be an 18-character resident ID number")


class ReporterSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    phone = fields.String(required=True, validate=PHONE)
    id_no = fields.String(load_default=None, allow_none=True, validate=ID_NO)


class LocationSchema(Schema):
    address = fields.String(required=True, validate=validate.Length(min=1, max=300))
    lat = fields.Float(load_default=None, allow_none=True, validate=validate.Range(-90, 90))
    lon = fields.Float(load_default=None, allow_none=True, validate=validate.Range(-180, 180))
    grid = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=50))


class IntakeSchema(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(required=True, validate=validate.Length(min=1, max=5000))
    category = fields.String(required=True, validate=validate.Length(min=1, max=50))
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    reporter = fields.Nested(ReporterSchema, required=True)
    location = fields.Nested(LocationSchema, required=True)
    community = fields.String(required=True, validate=validate.Length(min=1, max=50))
    reported_at = fields.AwareDateTime(
        format="iso", load_default=None, allow_none=True,
        error_messages={"invalid": "must be an ISO 8601 instant with an offset, e.g. 2025-02-20T09:15:00+08:00",
                        "invalid_awareness": "must carry an offset, e.g. 2025-02-20T09:15:00+08:00"},
        metadata={"description": "when the dispute was reported (a case entered from a paper record), "
                                 "ISO 8601 with an offset; not in the future, not before 2000-01-01; "
                                 "default: the intake instant"})

    def __init__(self, *args, categories=(), communities=None, now: datetime | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.now = now
        categories = tuple(categories)
        if categories:
            self.fields["category"].validators = [
                *self.fields["category"].validators,
                validate.OneOf(categories, error="must be one of: {choices}")]
        if communities is not None:
            self.fields["community"].validators = [
                *self.fields["community"].validators,
                validate.OneOf(sorted(communities), error="is not a community of the organisation")]

    @validates("reported_at")
    def _reported_in_the_past(self, value, **_kwargs):
        if value is None:
            return
        if value < EARLIEST_REPORT:
            raise ValidationError("must not be before 2000-01-01")
        if self.now is not None and value > self.now:
            raise ValidationError("must not be in the future")
