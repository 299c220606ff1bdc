"""Form fields declared in the BPMN, and validation of submitted data.

A user task declares each field as a `spiffworkflow:property` named
`field.<name>` whose value is `<type>[ required][ required_if:<other>=<value>]`,
type being `string`, `text`, `int`, `bool`, `date` (YYYY-MM-DD), `list` (of short texts,
e.g. unit codes; a comma-separated text is accepted too) or `enum:a|b|c`. Completion checks
the submitted data against the declaration and names every bad field; fields
the task does not declare are refused, so a form can never overwrite case
data such as the routed unit or the rework counters.

A field's label for people is a property `label.<name>` beside it, valued
`<Chinese>|<English>` (or one text for both): the web console shows it in
the reader's language, and the field's name when the BPMN gives no label.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from engine.errors import InvalidForm

FIELD_PREFIX = "field."
LABEL_PREFIX = "label."
LANGUAGES = ("zh", "en")
TYPES = ("string", "text", "int", "bool", "date", "list", "enum")
MAX_LEN = {"string": 200, "text": 5000, "date": 10}
MAX_ITEMS = 20  # a list field's items, each a string of at most MAX_LEN["string"]


@dataclass(frozen=True)
class FormField:
    name: str
    type: str
    required: bool = False
    choices: tuple[str, ...] = ()
    required_if: tuple[str, str] | None = None
    labels: tuple[tuple[str, str], ...] = ()  # (language, label) pairs from `label.<name>`

    def label(self, language: str = "zh") -> str:
        found = dict(self.labels)
        return found.get(language) or found.get("zh") or self.name

    def describe(self) -> dict:
        out = {"name": self.name, "type": self.type, "required": self.required}
        if self.labels:
            out["label"] = dict(self.labels)
        if self.choices:
            out["choices"] = list(self.choices)
        if self.required_if:
            out["required_if"] = {"field": self.required_if[0], "value": self.required_if[1]}
        return out


def parse_field(name: str, spec: str) -> FormField:
    """Parse one declaration; raises ValueError with the reason."""
    if not name.isidentifier() or name.startswith("_"):
        raise ValueError(f"field name {name!r} must be an identifier not starting with '_'")
    tokens = spec.split()
    if not tokens:
        raise ValueError(f"field {name!r} has no type")
    kind, _, choices = tokens[0].partition(":")
    if kind not in TYPES:
        raise ValueError(f"field {name!r}: unknown type {kind!r} (use one of {', '.join(TYPES)})")
    parsed_choices: tuple[str, ...] = ()
    if kind == "enum":
        parsed_choices = tuple(c for c in choices.split("|") if c)
        if not parsed_choices:
            raise ValueError(f"field {name!r}: enum needs choices, e.g. enum:a|b")
    required, required_if = False, None
    for token in tokens[1:]:
        if token == "required":
            required = True
        elif token.startswith("required_if:") and "=" in token:
            other, _, value = token[len("required_if:"):].partition("=")
            required_if = (other, value)
        else:
            raise ValueError(f"field {name!r}: unknown option {token!r}")
    return FormField(name, kind, required, parsed_choices, required_if)


def parse_labels(value: str | None) -> tuple[tuple[str, str], ...]:
    """`中文|English` -> (("zh", "中文"), ("en", "English")); one text serves both languages."""
    parts = [p.strip() for p in (value or "").split("|")]
    if not parts or not parts[0]:
        return ()
    if len(parts) == 1:
        parts = parts * len(LANGUAGES)
    return tuple((lang, text) for lang, text in zip(LANGUAGES, parts) if text)


def parse_form(properties: dict) -> list[FormField]:
    out = []
    for key, value in properties.items():
        if key.startswith(FIELD_PREFIX):
            field = parse_field(key[len(FIELD_PREFIX):], value)
            labels = parse_labels(properties.get(LABEL_PREFIX + field.name))
            out.append(FormField(field.name, field.type, field.required, field.choices, field.required_if, labels)
                       if labels else field)
    return out


def _check_list(value):
    if isinstance(value, str):  # a comma-separated text, as a plain form sends it
        value = [v for v in (p.strip() for p in value.replace("，", ",").split(",")) if v]
    if not isinstance(value, list):
        return None, "must be a list of texts"
    out = []
    for item in value:
        if not isinstance(item, str) or not item.strip() or "\x00" in item or len(item.strip()) > MAX_LEN["string"]:
            return None, f"each item must be a non-empty text of at most {MAX_LEN['string']} characters"
        if item.strip() not in out:
            out.append(item.strip())
    if len(out) > MAX_ITEMS:
        return None, f"must have at most {MAX_ITEMS} items"
    return out, None


def _check_value(field: FormField, value):
    if field.type == "list":
        return _check_list(value)
    if field.type == "date":
        if not isinstance(value, str):
            return None, "must be a date, YYYY-MM-DD"
        try:
            return date.fromisoformat(value.strip()).isoformat(), None
        except ValueError:
            return None, "must be a date, YYYY-MM-DD"
    if field.type in ("string", "text", "enum"):
        if not isinstance(value, str):
            return None, "must be a string"
        value = value.strip()
        if "\x00" in value:
            return None, "must not contain NUL characters"
        if field.type == "enum" and value not in field.choices:
            return None, f"must be one of: {', '.join(field.choices)}"
        if field.type in MAX_LEN and len(value) > MAX_LEN[field.type]:
            return None, f"must be at most {MAX_LEN[field.type]} characters"
        return value, None
    if field.type == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return None, "must be an integer"
        return value, None
    if field.type == "bool":
        if not isinstance(value, bool):
            return None, "must be true or false"
        return value, None
    return None, "has an unknown type"


def validate(fields: list[FormField], data) -> dict:
    """The cleaned data, or InvalidForm naming every bad field."""
    if not isinstance(data, dict):
        raise InvalidForm("form data must be a JSON object", errors={"data": ["must be an object"]})
    errors: dict[str, list[str]] = {}
    declared = {f.name: f for f in fields}
    for key in data:
        if key not in declared:
            errors.setdefault(str(key), []).append("is not a field of this task")
    cleaned = {}
    for field in fields:
        present = field.name in data and data[field.name] not in (None, "")
        if present:
            value, problem = _check_value(field, data[field.name])
            if problem:
                errors.setdefault(field.name, []).append(problem)
                continue
            if value in ("", []) and field.type != "bool":
                present = False
            else:
                cleaned[field.name] = value
        if not present:
            needed = field.required
            if field.required_if:
                other, expected = field.required_if
                needed = needed or data.get(other) == expected
            if needed:
                errors.setdefault(field.name, []).append("is required")
            else:
                cleaned[field.name] = None
    if errors:
        raise InvalidForm("the form has invalid fields", errors=errors)
    return cleaned


# -- the same rule, declared as JSON Schema (for the API's OpenAPI document) ---------------------

# Text a database can store has no NUL (nor a lone surrogate, which no portable regex can name: validators
# in Rust or JavaScript cannot even hold one). A required field needs one character that is not what
# str.strip() removes (Python's whitespace, spelt out: regex engines disagree on \x1c-\x1f).
STORABLE = "^[^\\u0000]*$"
_SPACE = "\\t-\\r\\u001c-\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
NOT_BLANK = f"^[^\\u0000]*[^\\u0000{_SPACE}][^\\u0000]*$"


def _value_schema(field: FormField, required: bool) -> dict:
    if field.type == "int":
        out: dict = {"type": "integer"}
    elif field.type == "bool":
        out = {"type": "boolean"}
    elif field.type == "list":
        out = {"type": "array", "maxItems": MAX_ITEMS,
               "items": {"type": "string", "pattern": NOT_BLANK, "maxLength": MAX_LEN["string"]}}
        if required:
            out["minItems"] = 1
    elif field.type == "date":
        out = {"type": "string", "format": "date"}
    else:
        out = {"type": "string", "pattern": NOT_BLANK if required else STORABLE}
        if field.type == "enum":
            out["enum"] = list(field.choices)
        else:
            out["maxLength"] = MAX_LEN[field.type]
    if not required:
        out["nullable"] = True
    return out


def json_schemas(fields: list[FormField]) -> list[dict]:
    """The data `validate` accepts, as JSON Schema objects (one per branch of each `required_if`)."""
    variants: list[tuple[dict, set]] = [({}, set())]  # (restrictions on conditioning fields, required)
    for field in fields:
        if not field.required_if:
            continue
        other, value = field.required_if
        split = []
        for restrict, required in variants:
            split.append(({**restrict, other: ("not", value)}, set(required)))
            split.append(({**restrict, other: ("is", value)}, required | {field.name}))
        variants = split
    by_name = {f.name: f for f in fields}
    out = []
    for restrict, conditional in variants:
        required = {f.name for f in fields if f.required} | conditional
        properties = {f.name: _value_schema(f, f.name in required) for f in fields}
        feasible = True
        for name, (how, value) in restrict.items():
            schema = properties.get(name)
            if schema is None:
                feasible = how == "not"  # a condition on an undeclared field can never hold
                continue
            if how == "is":
                if by_name[name].type in ("int", "bool"):
                    feasible = False  # submitted values are compared as sent: a number is never the text
                    continue
                properties[name] = {**schema, "enum": [value]}
                properties[name].pop("nullable", None)
                required.add(name)
            elif "enum" in schema:
                schema["enum"] = [c for c in schema["enum"] if c != value]
                feasible = feasible and bool(schema["enum"] or schema.get("nullable"))
            else:
                properties[name] = {**schema, "not": {"enum": [value]}}
        if feasible:
            out.append({"type": "object", "properties": properties, "required": sorted(required),
                        "additionalProperties": False} if required else
                       {"type": "object", "properties": properties, "additionalProperties": False})
    return out


def text_input(form: dict, name: str, errors: dict, limit: int, required: bool = True) -> str | None:
    """A free text of a service's own form (not a BPMN task's): stripped, or its error put in `errors`."""
    value = form.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit or "\x00" in value:
        errors[name] = [f"{'required: ' if required else ''}a text of at most {limit} characters"]
        return None
    return value.strip()
