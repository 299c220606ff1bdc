"""Where delivery lives: the engine never imports the channels (they are injected), the channels never Flask."""
from __future__ import annotations

from pathlib import Path

from tests.test_layout import _imports

ROOT = Path(__file__).resolve().parents[1]


def test_the_engine_knows_no_channel_and_no_channel_knows_flask_or_sessions():
    for path in sorted((ROOT / "engine").rglob("*.py")):
        assert not any(n == "channels" or n.startswith("channels.") for n in _imports(path)), path
    for path in sorted((ROOT / "channels").rglob("*.py")):
        imported = _imports(path)
        assert not any(n.split(".")[0] in ("flask", "sqlalchemy", "api", "cli") for n in imported), path
        assert not any(n.startswith("engine.") and n != "engine.services.outbox" and
                       not n.startswith("engine.services.outbox.") for n in imported), path
