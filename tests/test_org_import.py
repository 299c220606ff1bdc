"""`flask org import`: idempotent, units and users, deactivated never deleted, refused with gaps."""
from __future__ import annotations

import tomllib
from pathlib import Path

from sqlalchemy import func, select

from engine.services.org import list_users
from engine.store.org_models import AppUser, Unit

ROOT = Path(__file__).resolve().parents[1]
PROCESSES = ROOT / "processes"


def _write_org(tmp_path: Path, *, drop_units=(), drop_users=(), edit_users=None) -> Path:
    units = tomllib.loads((PROCESSES / "organisation.toml").read_text())["units"]
    users = tomllib.loads((PROCESSES / "demo_users.toml").read_text())["users"]
    units = [u for u in units if u["code"] not in drop_units]
    users = [dict(u, **(edit_users or {}).get(u["username"], {})) for u in users if u["username"] not in drop_users]

    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return '"' + str(v) + '"'

    lines = []
    for section, rows in (("units", units), ("users", users)):
        for row in rows:
            lines.append(f"[[{section}]]")
            lines.extend(f"{k} = {value(v)}" for k, v in row.items())
            lines.append("")
    path = tmp_path / "org.toml"
    path.write_text("\n".join(lines))
    return path


def test_import_is_idempotent_updates_and_deactivates_never_deletes(app, rt, tmp_path):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["org", "import", str(PROCESSES)])
    assert first.exit_code == 0, first.output
    units = (PROCESSES / "organisation.toml").read_text().count("[[units]]")
    users = (PROCESSES / "demo_users.toml").read_text().count("[[users]]")
    assert f"units: {units} created, 0 updated, 0 deactivated, 0 unchanged" in first.output
    assert f"users: {users} created, 0 updated, 0 deactivated, 0 unchanged" in first.output
    again = runner.invoke(args=["org", "import", str(PROCESSES)])
    assert f"units: 0 created, 0 updated, 0 deactivated, {units} unchanged" in again.output
    assert f"users: 0 created, 0 updated, 0 deactivated, {users} unchanged" in again.output

    # cgj_handler2 leaves; cgj_handler moves to the city's other handler unit and also dispatches; a
    # district department closes (no user, no case there)
    path = _write_org(tmp_path, drop_units=("WJG-MZJ",), drop_users=("cgj_handler2",),
                      edit_users={"cgj_handler": {"unit": "YC-ZJJ", "roles": ["handler", "dispatcher"]}})
    third = runner.invoke(args=["org", "import", str(path)])
    assert third.exit_code == 0, third.output
    assert f"units: 0 created, 0 updated, 1 deactivated, {units - 1} unchanged" in third.output
    assert f"users: 0 created, 1 updated, 1 deactivated, {users - 2} unchanged" in third.output
    with rt.db.read() as session:
        assert session.scalar(select(func.count()).select_from(Unit)) == units
        assert session.get(Unit, "WJG-MZJ").active is False
        gone = session.scalar(select(AppUser).where(AppUser.username == "cgj_handler2"))
        assert gone is not None and gone.active is False
    users = {u["username"]: u for u in list_users(rt)}
    assert users["cgj_handler"]["unit"]["code"] == "YC-ZJJ" and users["cgj_handler"]["roles"] == ["dispatcher",
                                                                                                   "handler"]
    assert not rt.tables.org.is_active("WJG-MZJ") and rt.tables.org.is_active("WJG-SFJ")  # this worker sees it

    # importing the full file again reactivates them
    back = runner.invoke(args=["org", "import", str(PROCESSES)])
    assert "units: 0 created, 1 updated, 0 deactivated" in back.output
    assert "users: 0 created, 2 updated, 0 deactivated" in back.output


def test_an_organisation_with_gaps_is_refused_naming_them_unless_allowed(app, rt, tmp_path):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["org", "import", str(PROCESSES)]).exit_code == 0
    path = _write_org(tmp_path, drop_users=("hbj_handler", "hbj_dispatcher"))
    refused = runner.invoke(args=["org", "import", str(path)])
    assert refused.exit_code == 1
    assert "gap: category environment: lane 责任单位 (role handler) -> YC-HBJ: no active user of YC-HBJ holds " \
           "role handler" in refused.output
    assert "--allow-gaps" in refused.output
    with rt.db.read() as session:  # nothing changed
        assert session.scalar(select(AppUser.active).where(AppUser.username == "hbj_handler")) is True
    allowed = runner.invoke(args=["org", "import", "--allow-gaps", str(path)])
    assert allowed.exit_code == 0, allowed.output
    assert "WARNING gap allowed: category environment" in allowed.output and "2 deactivated" in allowed.output
    check = runner.invoke(args=["org", "check"])
    assert check.exit_code == 1 and "YC-HBJ" in check.output


def test_bad_files_are_refused_naming_file_entry_and_field(app, rt, tmp_path):
    runner = app.test_cli_runner()
    cases = {
        '[[units]]\ncode = "X"\nname = "x"\nkind = "planet"\n': "org.toml: units[0].kind: unknown kind 'planet'",
        '[[units]]\ncode = "X"\nname = "x"\nkind = "city"\nparent = "NOPE"\n': "unknown parent unit 'NOPE'",
        '[[units]]\ncode = "A"\nname = "a"\nkind = "city"\nparent = "B"\n'
        '[[units]]\ncode = "B"\nname = "b"\nkind = "city"\nparent = "A"\n': "the units form a cycle",
        '[[users]]\nusername = "u"\nunit = "YC"\n': "org.toml: users[0].roles: is required",
        '[[users]]\nusername = "u"\nunit = "YC"\nroles = ["pope"]\n': "unknown role 'pope'",
        '[[users]]\nusername = "u"\nunit = "NOWHERE"\nroles = ["handler"]\n': "unknown unit 'NOWHERE'",
        'units = 3\n': "must be an array of tables",
        '[[units]\n': "org.toml",
        'title = "nothing"\n': "no [[units]] and no [[users]]",
    }
    path = tmp_path / "org.toml"
    for text, expected in cases.items():
        path.write_text(text)
        for command in ("import", "check"):
            result = runner.invoke(args=["org", command, str(path)])
            assert result.exit_code == 1, (text, command, result.output)
            if command == "import" or "unknown unit" not in expected and "unknown role" not in expected:
                assert expected in result.output, (text, command, result.output)
            assert "Traceback" not in result.output
    with rt.db.read() as session:
        assert session.scalar(select(func.count()).select_from(Unit)) == 0
