"""An organisation with a gap, and an app over it: the district 西陵区 without its coordination office."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GAP_UNIT = "XL-ZZB"  # 西陵区综治维稳信访协调办公室: the district_coordination level of every XL community


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
        text = _drop_blocks(org.read_text(encoding="utf-8"), "units", rf'(?m)^code = "{GAP_UNIT}"$')
        assert GAP_UNIT not in text
        org.write_text(text, encoding="utf-8")
        users = target / "demo_users.toml"
        users.write_text(_drop_blocks(users.read_text(encoding="utf-8"), "users", rf'(?m)^unit = "{GAP_UNIT}"$'),
                         encoding="utf-8")
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
