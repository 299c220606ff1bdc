"""The app factory; the command groups live in `cli/`, one module each.

`create_app(config=None)` reads defaults, then the environment, then the
given overrides, and wires each package with its `init_app`. Nothing (no
database engine, no session, no scheduler) is built at import time.

Environment:
  DATABASE_URL   SQLAlchemy URL (default: SQLite file instance/dispute.db)
  LOG_LEVEL      default INFO
  LOG_FORMAT     text (default) or json (one JSON object a line, with the request id; `flask serve` sets json)
  TIMER_HEARTBEAT_MAX_AGE  seconds since a timer worker's last heartbeat before /readyz says 503 (default 30)
  DATABASE_POOL_SIZE, DATABASE_MAX_OVERFLOW  PostgreSQL connections per process (default 10 and 20)
  PROMETHEUS_MULTIPROC_DIR  where gunicorn workers share /metrics counters (`flask serve` sets one)
  TIME_ZONE      default Asia/Shanghai (working days and case numbers)
  PROCESSES_DIR  default ./processes
  DEMO_TOKEN_FILE  where `flask demo` keeps the demo users' tokens (default instance/demo_tokens.tsv)
  SQLITE_BUSY_TIMEOUT   seconds a SQLite writer waits for the lock before a 503 (default 60)
  DATABASE_RETRY_AFTER  the Retry-After seconds of a 503 database_unavailable (default 2)
  IDEMPOTENCY_KEY_TTL   seconds an Idempotency-Key and its stored response are kept (default 86400)
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from engine.logcontext import configure_logging
from engine.store import Base
from engine.store.db import engine_options

ROOT = Path(__file__).resolve().parent

db = SQLAlchemy(metadata=Base.metadata)
migrate = Migrate()


def _config_from_env(app: Flask) -> dict:
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{Path(app.instance_path) / 'dispute.db'}"
    if url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url[len("postgres://"):]
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return {
        "SQLALCHEMY_DATABASE_URI": url,
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        "LOG_FORMAT": os.environ.get("LOG_FORMAT", "text"),
        "TIMER_HEARTBEAT_MAX_AGE": float(os.environ.get("TIMER_HEARTBEAT_MAX_AGE", "30")),
        "TIME_ZONE": os.environ.get("TIME_ZONE", "Asia/Shanghai"),
        "PROCESSES_DIR": os.environ.get("PROCESSES_DIR", str(ROOT / "processes")),
        "DEMO_TOKEN_FILE": os.environ.get("DEMO_TOKEN_FILE") or str(Path(app.instance_path) / "demo_tokens.tsv"),
        "SQLITE_BUSY_TIMEOUT": float(os.environ.get("SQLITE_BUSY_TIMEOUT", "60")),
        "DATABASE_RETRY_AFTER": int(os.environ.get("DATABASE_RETRY_AFTER", "2")),
        "IDEMPOTENCY_KEY_TTL": int(os.environ.get("IDEMPOTENCY_KEY_TTL", "86400")),
    }


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.from_mapping(SECRET_KEY=os.environ.get("SECRET_KEY", "dev"))
    app.json.ensure_ascii = False  # Chinese names and texts readable in every response
    app.config.update(_config_from_env(app))
    if config:
        app.config.update(config)
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    options = engine_options(url, app.config["SQLITE_BUSY_TIMEOUT"])
    if "pool_size" in options:  # PostgreSQL: sizes per process (README: Production serving)
        options.update(pool_size=int(os.environ.get("DATABASE_POOL_SIZE", options["pool_size"])),
                       max_overflow=int(os.environ.get("DATABASE_MAX_OVERFLOW", options["max_overflow"])))
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", options)
    configure_logging(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])
    # SpiffWorkflow's task logger prints task data (personal data) at DEBUG: keep it quiet.
    logging.getLogger("spiff").setLevel(logging.WARNING)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)

    from engine.runtime import build_runtime
    from handlers import HANDLERS

    with app.app_context():
        app.extensions["dispute_runtime"] = build_runtime(
            db.engine, Path(app.config["PROCESSES_DIR"]), HANDLERS, app.config["TIME_ZONE"],
            busy_timeout=app.config["SQLITE_BUSY_TIMEOUT"], retry_after=app.config["DATABASE_RETRY_AFTER"])

    import api

    api.init_app(app)
    from cli import register_commands

    register_commands(app)
    return app


def runtime_of(app: Flask):
    return app.extensions["dispute_runtime"]
