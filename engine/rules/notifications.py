"""Notification templates: one per message kind, in `processes/notifications.toml`, checked when loaded.

A kind names what happened (a case arrived, a yellow or red light, a supervision
opened, the reply to the citizen, the citizen's tracking code …) and, here in
`KINDS`, the placeholders its templates may use. Loading refuses a template
that uses any other placeholder, naming the template and the placeholder, and
refuses a file that lacks a kind: a typo is found at start-up, not when the
message is due. Each template has a `title` (e-mail subject), a `text` (the
message itself, for e-mail and webhooks and the case's notification list) and
an `sms_template`: the template code registered with the SMS gateway, which
renders the text itself from the same parameters.
"""
from __future__ import annotations

import string
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

FILE = "notifications.toml"

# kind -> the placeholders its templates may use (and its senders must give).
KINDS: dict[str, frozenset[str]] = {
    "notice": frozenset({"text"}),                               # free text (older callers)
    "arrival": frozenset({"case_no", "category", "unit"}),      # 案件派送/交办到达
    "yellow": frozenset({"case_no", "step", "due"}),            # 黄灯预警
    "red": frozenset({"case_no", "step"}),                      # 红灯督办 to the unit's leader
    "supervision": frozenset({"case_no", "step", "unit"}),      # 督办立案 to the supervision centre
    "reply_ready": frozenset({"case_no"}),                      # the community: reply and rating due
    "citizen_reply": frozenset({"case_no", "reply"}),           # 统一回告 to the citizen
    "tracking_code": frozenset({"case_no", "tracking_code"}),   # 查询码 to the citizen at intake
    "refused": frozenset({"case_no", "unit", "reason", "suggested"}),  # 退回: to the routing desk (or the lead unit)
    "first_handling": frozenset({"case_no", "unit", "transfers"}),     # 首办负责: the transfer cap reached, to the centre
    "co_handling": frozenset({"case_no", "lead", "unit"}),             # 协办: to a co-handling unit
    # a source system's status callback (webhook): the params travel as structured JSON
    "status_changed": frozenset({"event", "case_no", "external_ref", "previous_status", "status", "current_unit",
                                 "at"}),
}
FIELDS = ("title", "text", "sms_template")


class TemplateError(ValueError):
    """A template file or a rendering was refused; `template` and `placeholder` say where."""

    def __init__(self, message: str, template: str | None = None, placeholder: str | None = None):
        super().__init__(message)
        self.template, self.placeholder = template, placeholder


@dataclass(frozen=True)
class Template:
    kind: str
    title: str
    text: str
    sms_template: str


@dataclass(frozen=True)
class Rendered:
    kind: str
    title: str
    text: str
    sms_template: str
    params: dict


def _placeholders(kind: str, field: str, text: str) -> set[str]:
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise TemplateError(f"template {kind}.{field}: {exc}", kind) from None
    names = set()
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise TemplateError(f"template {kind}.{field}: placeholder {{{name}}} must be a plain name "
                                f"(no index, attribute, conversion or format)", kind, name)
        names.add(name)
    return names


def parse_templates(data: dict, source: str = FILE) -> dict[str, Template]:
    out = {}
    for kind, entry in data.items():
        if kind not in KINDS:
            raise TemplateError(f"{source}: unknown message kind [{kind}] (known: {', '.join(KINDS)})", kind)
        if not isinstance(entry, dict) or any(not isinstance(entry.get(f), str) or not entry.get(f)
                                              for f in FIELDS):
            raise TemplateError(f"{source}: template [{kind}] needs the texts {', '.join(FIELDS)}", kind)
        for field in ("title", "text"):
            for name in sorted(_placeholders(kind, field, entry[field]) - KINDS[kind]):
                raise TemplateError(f"{source}: template [{kind}] {field} uses the unknown placeholder {{{name}}}"
                                    f" (it may use {', '.join(sorted(KINDS[kind]))})", kind, name)
        out[kind] = Template(kind, entry["title"], entry["text"], entry["sms_template"])
    missing = sorted(set(KINDS) - set(out))
    if missing:
        raise TemplateError(f"{source}: no template for the message kind(s) {', '.join(missing)}", missing[0])
    return out


class Templates:
    def __init__(self, templates: dict[str, Template]):
        self.by_kind = templates

    def render(self, kind: str, params: dict) -> Rendered:
        """The message of `kind` with `params` (exactly the kind's placeholders, as text)."""
        if kind not in self.by_kind:
            raise TemplateError(f"unknown message kind {kind!r}", kind)
        missing = sorted(KINDS[kind] - set(params))
        if missing:
            raise TemplateError(f"message {kind} needs the parameter(s) {', '.join(missing)}", kind, missing[0])
        extra = sorted(set(params) - KINDS[kind])
        if extra:
            raise TemplateError(f"message {kind} has no placeholder {{{extra[0]}}}", kind, extra[0])
        values = {k: "" if v is None else str(v) for k, v in params.items()}
        t = self.by_kind[kind]
        return Rendered(kind, t.title.format_map(values), t.text.format_map(values), t.sms_template, values)


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> Templates:
    with open(path, "rb") as fh:
        try:
            data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise TemplateError(f"{path}: {exc}") from None
    return Templates(parse_templates(data, path))


def load_templates(processes_dir) -> Templates:
    """The templates of `processes_dir/notifications.toml` (re-read when the file changes)."""
    path = Path(processes_dir) / FILE
    if not path.exists():
        raise TemplateError(f"{path} does not exist")
    return _load(str(path), path.stat().st_mtime)


# -- quiet hours ----------------------------------------------------------------------------


def parse_quiet_hours(text: str | None):
    """`"22:00-08:00"` → (start, end) local times; empty or "off" → None (no quiet hours)."""
    from datetime import time

    if not text or text.strip().lower() in ("off", "none", "0"):
        return None
    try:
        start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError:
        raise TemplateError(f"quiet hours {text!r} are not HH:MM-HH:MM") from None
    return (start, end) if start != end else None


def quiet_until(now, tz, quiet):
    """The end of the quiet hours `now` falls in (an aware UTC instant), or None outside them."""
    from datetime import datetime, timedelta, timezone

    if quiet is None:
        return None
    start, end = quiet
    local = now.astimezone(tz)
    t = local.time().replace(tzinfo=None)
    inside = start <= t < end if start < end else (t >= start or t < end)
    if not inside:
        return None
    day = local.date() if t < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=tz).astimezone(timezone.utc)
