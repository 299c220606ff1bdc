"""Decoding an HTML form into the data a service expects, and nothing more.

Browsers send every field as text; the task form's values are turned into
what the BPMN field's type asks for (a number for `int`, true/false for
`bool`), an empty box into "not given", and anything that does not decode is
passed on as sent, so the service's validation (engine.rules.forms) names it.
"""
from __future__ import annotations


def task_data(form_fields: list[dict], posted) -> dict:
    data = {}
    for field in form_fields:
        raw = posted.get(field["name"])
        if raw is None or raw.strip() == "":
            continue
        if field["type"] == "int":
            try:
                data[field["name"]] = int(raw.strip())
            except ValueError:
                data[field["name"]] = raw
        elif field["type"] == "bool":
            data[field["name"]] = {"true": True, "false": False}.get(raw, raw)
        else:
            data[field["name"]] = raw
    return data


def intake_data(posted) -> dict:
    """The intake form's flat fields as the nested intake the API takes (empty boxes left out)."""
    def value(name):
        raw = posted.get(name, "")
        return raw if raw.strip() else None

    data = {k: value(k) for k in ("title", "description", "category", "channel", "community")}
    data["reporter"] = {"name": value("reporter_name"), "phone": value("reporter_phone"),
                        "id_no": value("reporter_id_no")}
    data["location"] = {"address": value("address"), "grid": value("grid")}
    for part in ("reporter", "location"):
        data[part] = {k: v for k, v in data[part].items() if v is not None}
    return {k: v for k, v in data.items() if v is not None}
