"""An organisation with a gap, and an app over it: no coordination above the district 西陵区.

A missing ladder level falls back to the next level up (engine.rules.organisation), so a gap
needs the whole ladder above the district gone: its coordination office, the city's, and the
city leaders' joint meeting.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GAP_UNIT = "XL-ZZB"  # 西陵区综治维稳信访协调办公室: the district_coordination level of every XL community
GAP_UNITS = (GAP_UNIT, "YC-ZZB", "YC-LXHY")  # ... and the levels above it that would take its tasks


def _drop_blocks(text: str, header: str, pattern: str) -> str:
    """Remove each `[[header]]` block of a TOML file whose text matches `pattern`."""
    parts = re.split(rf"(?m)^(?=\[\[{header}\]\]\s*$)", text)
    return "".join(p for p in parts if not re.search(pattern, p))


def processes_copy(tmp_path: Path, *, gap: bool) -> Path:
    """A copy of processes/ in tmp_path; with `gap`, without the XL coordination office (and its user)."""
    target = tmp_path / ("processes-gap" if gap else "processes-fixed")
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(ROOT / "processes", target)
    if gap:
        org = target / "organisation.toml"
        text = org.read_text(encoding="utf-8")
        users = target / "demo_users.toml"
        people = users.read_text(encoding="utf-8")
        for code in GAP_UNITS:
            text = _drop_blocks(text, "units", rf'(?m)^code = "{code}"$')
            people = _drop_blocks(people, "users", rf'(?m)^unit = "{code}"$')
            assert f'"{code}"' not in text
        org.write_text(text, encoding="utf-8")
        users.write_text(people, encoding="utf-8")
    return target


def make_app(db_url: str, processes_dir: Path):
    """The real app on the test database, reading its tables from `processes_dir` (a restart, in effect)."""
    from app import create_app, runtime_of
    from engine.services.processes import deploy_paths

    app = create_app({"SQLALCHEMY_DATABASE_URI": db_url, "TESTING": True, "PROCESSES_DIR": str(processes_dir)})
    deploy_paths(runtime_of(app), None, "tests")
    return app


def dispose(app) -> None:
    from app import db

    with app.app_context():
        db.engine.dispose()
