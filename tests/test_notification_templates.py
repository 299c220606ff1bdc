"""Notification templates: the shipped file loads; an unknown placeholder is refused by name; quiet hours."""
from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from engine.rules.notifications import (
    KINDS,
    TemplateError,
    load_templates,
    parse_quiet_hours,
    parse_templates,
    quiet_until,
)

ROOT = Path(__file__).resolve().parents[1]
SHANGHAI = ZoneInfo("Asia/Shanghai")


def shipped() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "processes" / "notifications.toml").read_text())


def test_the_shipped_templates_cover_every_kind_in_chinese():
    templates = load_templates(ROOT / "processes")
    assert set(templates.by_kind) == set(KINDS)
    r = templates.render("tracking_code", {"case_no": "2025-000001", "tracking_code": "K7Q2-9XPM"})
    assert r.text == "【矛盾联调】您反映的事项已受理，编号2025-000001，查询码K7Q2-9XPM，可凭查询码查询办理进度。"
    assert r.sms_template == "SMS_DISPUTE_TRACKING" and r.title == "受理回执：2025-000001"


def test_an_unknown_placeholder_is_refused_naming_the_template_and_the_placeholder():
    data = shipped()
    data["red"]["text"] = "【红灯督办】案件{case_no}「{step}」已超时，责任人{handler_name}。"
    with pytest.raises(TemplateError) as exc:
        parse_templates(data)
    assert exc.value.template == "red" and exc.value.placeholder == "handler_name"
    assert "[red]" in str(exc.value) and "{handler_name}" in str(exc.value)


def test_a_placeholder_in_the_title_is_checked_too_and_so_are_indexes_and_formats():
    data = shipped()
    data["arrival"]["title"] = "到达：{case}"
    with pytest.raises(TemplateError, match=r"\[arrival\] title uses the unknown placeholder \{case\}"):
        parse_templates(data)
    data = shipped()
    data["yellow"]["text"] = "{case_no.__class__}"
    with pytest.raises(TemplateError, match="plain name"):
        parse_templates(data)
    data["yellow"]["text"] = "{case_no"
    with pytest.raises(TemplateError, match="yellow"):
        parse_templates(data)


def test_a_missing_or_unknown_kind_and_a_missing_text_are_refused(tmp_path):
    data = shipped()
    del data["supervision"]
    with pytest.raises(TemplateError, match="no template for the message kind.*supervision"):
        parse_templates(data)
    data = shipped()
    data["birthday"] = {"title": "t", "text": "x", "sms_template": "SMS_1"}
    with pytest.raises(TemplateError, match=r"unknown message kind \[birthday\]"):
        parse_templates(data)
    data = shipped()
    del data["arrival"]["sms_template"]
    with pytest.raises(TemplateError, match=r"\[arrival\] needs"):
        parse_templates(data)
    for name in ("routing.toml", "notifications.toml"):
        shutil.copy(ROOT / "processes" / name, tmp_path / name)
    (tmp_path / "notifications.toml").write_text(
        (tmp_path / "notifications.toml").read_text().replace("{reply}", "{replay}"))
    with pytest.raises(TemplateError, match=r"\[citizen_reply\] text uses the unknown placeholder \{replay\}"):
        load_templates(tmp_path)


def test_rendering_wants_exactly_the_kinds_parameters():
    templates = load_templates(ROOT / "processes")
    with pytest.raises(TemplateError, match="needs the parameter.*step"):
        templates.render("red", {"case_no": "2025-000001"})
    with pytest.raises(TemplateError, match=r"no placeholder \{phone\}"):
        templates.render("red", {"case_no": "2025-000001", "step": "办理", "phone": "1"})


@pytest.mark.parametrize("local, until", [
    ((23, 30), (2025, 3, 4, 8, 0)),     # before midnight: until tomorrow 08:00
    ((2, 15), (2025, 3, 3, 8, 0)),      # after midnight: until 08:00 today
    ((22, 0), (2025, 3, 4, 8, 0)),      # the start is inside
    ((8, 0), None),                     # the end is outside
    ((12, 0), None),
])
def test_quiet_hours_across_midnight(local, until):
    now = datetime(2025, 3, 3, *local, tzinfo=SHANGHAI).astimezone(timezone.utc)
    expected = datetime(*until, tzinfo=SHANGHAI).astimezone(timezone.utc) if until else None
    assert quiet_until(now, SHANGHAI, parse_quiet_hours("22:00-08:00")) == expected


def test_quiet_hours_settings():
    assert parse_quiet_hours("off") is None and parse_quiet_hours("") is None
    noon = datetime(2025, 3, 3, 12, 30, tzinfo=SHANGHAI)
    assert quiet_until(noon, SHANGHAI, parse_quiet_hours("12:00-14:00")) == datetime(2025, 3, 3, 14, 0, tzinfo=SHANGHAI)
    with pytest.raises(TemplateError, match="HH:MM-HH:MM"):
        parse_quiet_hours("10pm-8am")
