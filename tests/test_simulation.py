"""The simulated period: real engine, real timer service, virtual clock; the same seed gives the same figures."""
from __future__ import annotations

from datetime import date

import pytest

from engine.errors import InvalidInput
from engine.services.simulation import load_profile, simulate
from timers import TimerService

FIRST, LAST = date(2025, 3, 1), date(2025, 3, 31)


def run(rt, seed, n=40):
    return simulate(rt, FIRST, LAST, seed, TimerService(rt, "sim").run_until_idle, cases_total=n)


def _sqlite_runtime(tmp_path, name):
    from flask_migrate import upgrade

    from app import create_app, runtime_of
    from engine.services.processes import deploy_paths

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / name}", "TESTING": True})
    with app.app_context():
        upgrade(directory=str(app.extensions["migrate"].directory))
    deploy_paths(runtime_of(app), None, "tests")
    return runtime_of(app)


@pytest.mark.slow
def test_the_same_seed_gives_the_same_figures(rt, tmp_path):
    first = run(rt, seed=11)
    again = run(_sqlite_runtime(tmp_path, "again.db"), seed=11)
    other = run(_sqlite_runtime(tmp_path, "other.db"), seed=12)
    assert first["statistics"] == again["statistics"] and first["assessments"] == again["assessments"]
    assert first["activity"] == again["activity"] and first["forecast"] == again["forecast"]
    assert other["statistics"] != first["statistics"]
    total = first["statistics"]["total"]
    assert total["accepted"] == 40 and first["activity"]["cases"] == 40
    assert 0 < total["completed"] <= 40 and total["resolved_by_level"]["community"] > 0
    assert first["activity"]["steps"] >= total["completed"]
    assert [a["month"] for a in first["assessments"]] == ["2025-03"]


def test_a_bad_profile_is_refused_naming_the_entry(rt, tmp_path):
    bad = tmp_path / "p.toml"
    bad.write_text('[arrivals]\nper_month = 5\n[categories]\nweather = 1\n[channels]\npigeon = 1\n'
                   '[behaviour]\nlate = 1.5\nsign_for_hours = [3, 1]\n')
    with pytest.raises(InvalidInput) as exc:
        load_profile(bad, rt.tables.routes)
    problems = " ".join(exc.value.errors["profile"])
    for needle in ("weather", "pigeon", "late", "sign_for_hours"):
        assert needle in problems


def test_the_command_refuses_a_database_with_cases(app, rt, tmp_path):
    from tests.support import Driver

    Driver.start(rt)
    url = rt.db.engine.url.render_as_string(hide_password=False)
    result = app.test_cli_runner().invoke(args=["simulate", "--cases", "1", "--from", "2025-03-01", "--to",
                                                "2025-03-02", "--db-url", url])
    assert result.exit_code == 1 and "already holds cases" in result.output
