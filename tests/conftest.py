"""Fixtures: the real app on a real database, SQLite and PostgreSQL alike.

Every test that asks for `app`, `rt` or `db_url` runs once per database in
TEST_DATABASES (default "sqlite,postgresql"). The schema is built by the
Alembic migrations once per session and database; each test then starts from
empty tables. PostgreSQL tests use their own schema in the `test` database at
TEST_POSTGRES_URL; when that server cannot be reached they are skipped, unless
REQUIRE_POSTGRES=1 (as in CI), where they fail.
"""
from __future__ import annotations

import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine import clock as clock_mod

ROOT = Path(__file__).resolve().parents[1]
PG_BASE = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DATABASES = [d.strip() for d in os.environ.get("TEST_DATABASES", "sqlite,postgresql").split(",") if d.strip()]
# A Monday morning in Shanghai, clear of holidays: deadlines in tests are easy to read.
T0 = datetime(2025, 3, 3, 1, 0, tzinfo=timezone.utc)


def _migrate(url: str) -> None:
    from flask_migrate import upgrade

    from app import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        from app import db

        db.engine.dispose()


def _pg_reachable() -> str | None:
    try:
        engine = sa.create_engine(PG_BASE)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # the reason is shown in the skip message
        return str(exc).splitlines()[0]


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    _migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def _pg_schema():
    reason = _pg_reachable()
    if reason:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required but unreachable at {PG_BASE}: {reason}")
        pytest.skip(f"PostgreSQL unreachable at {PG_BASE}: {reason}")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_BASE)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = f"{PG_BASE}?options=-csearch_path%3D{schema}"
    _migrate(url)
    yield url, schema, admin
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=DATABASES)
def db_url(request, tmp_path):
    if request.param == "sqlite":
        template = request.getfixturevalue("_sqlite_template")
        path = tmp_path / "case.db"
        shutil.copy(template, path)
        yield f"sqlite:///{path}"
    elif request.param == "postgresql":
        url, schema, admin = request.getfixturevalue("_pg_schema")
        with admin.begin() as conn:
            tables = conn.execute(sa.text(
                "SELECT tablename FROM pg_tables WHERE schemaname = :s AND tablename <> 'alembic_version'"),
                {"s": schema}).scalars().all()
            if tables:
                conn.execute(sa.text("TRUNCATE " + ", ".join(f'"{schema}"."{t}"' for t in tables)
                                     + " RESTART IDENTITY CASCADE"))
        yield url
    else:
        raise ValueError(f"unknown test database {request.param!r}")


@pytest.fixture
def clock():
    manual = clock_mod.ManualClock(T0)
    with clock_mod.using_clock(manual):
        yield manual


@pytest.fixture
def app(db_url, clock):
    from app import create_app, db, runtime_of
    from engine.services.processes import deploy_paths

    app = create_app({"SQLALCHEMY_DATABASE_URI": db_url, "TESTING": True})
    deploy_paths(runtime_of(app), None, "tests")
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def rt(app):
    from app import runtime_of

    return runtime_of(app)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def demo(app):
    """The demo organisation and its users (processes/demo_users.toml), seeded: {username: token}."""
    from app import runtime_of
    from engine.services.seed import seed_demo

    return {u["username"]: u["token"] for u in seed_demo(runtime_of(app))["users"]}


@pytest.fixture
def api(client, demo):
    """The test client speaking as the demo users (see tests/api_support.py)."""
    from tests.api_support import ApiClient

    return ApiClient(client, demo)
