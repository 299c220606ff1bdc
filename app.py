"""The app factory and the command line.

`create_app(config=None)` reads defaults, then the environment, then the
given overrides, and wires each package with its `init_app`. Nothing (no
database engine, no session, no scheduler) is built at import time.

Environment:
  DATABASE_URL   SQLAlchemy URL (default: SQLite file instance/dispute.db)
  LOG_LEVEL      default INFO
  TIME_ZONE      default Asia/Shanghai (working days and case numbers)
  PROCESSES_DIR  default ./processes
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from engine.db import engine_options
from engine.models import Base

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
        "TIME_ZONE": os.environ.get("TIME_ZONE", "Asia/Shanghai"),
        "PROCESSES_DIR": os.environ.get("PROCESSES_DIR", str(ROOT / "processes")),
    }


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.from_mapping(SECRET_KEY=os.environ.get("SECRET_KEY", "dev"), JSON_AS_ASCII=False)
    app.config.update(_config_from_env(app))
    if config:
        app.config.update(config)
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", engine_options(url))
    logging.basicConfig(level=app.config["LOG_LEVEL"],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # SpiffWorkflow's task logger prints task data (personal data) at DEBUG: keep it quiet.
    logging.getLogger("spiff").setLevel(logging.WARNING)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)

    from engine.runtime import build_runtime
    from handlers import HANDLERS

    with app.app_context():
        app.extensions["dispute_runtime"] = build_runtime(
            db.engine, Path(app.config["PROCESSES_DIR"]), HANDLERS, app.config["TIME_ZONE"])

    import api

    api.init_app(app)
    app.cli.add_command(processes_cli)
    app.cli.add_command(serve_command)
    return app


def runtime_of(app: Flask):
    return app.extensions["dispute_runtime"]


# -- command line ------------------------------------------------------------------

import click  # noqa: E402
from flask import current_app  # noqa: E402
from flask.cli import AppGroup, with_appcontext  # noqa: E402

processes_cli = AppGroup("processes", help="Validate and deploy BPMN process definitions.")


def _fail(message: str, code: int = 1):
    click.echo(message, err=True)
    raise SystemExit(code)


def _print_problems(problems: list[dict]) -> None:
    for p in problems:
        where = ":".join(str(x) for x in (p.get("file"), p.get("line")) if x)
        element = f" [{p['element']}]" if p.get("element") else ""
        fix = f"\n    fix: {p['fix']}" if p.get("fix") else ""
        click.echo(f"{where}{element}: {p['reason']}{fix}", err=True)


@processes_cli.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@with_appcontext
def validate_command(paths):
    """Check BPMN/DMN files (default: the processes directory); exit 1 on any problem."""
    from engine.definitions import read_sources
    from engine.processes import validate_sources

    rt = runtime_of(current_app)
    sources = read_sources(paths or [rt.processes_dir])
    problems = validate_sources(rt, sources)
    if problems:
        _print_problems(problems)
        _fail(f"{len(problems)} problem(s) in {len(sources)} file(s)")
    click.echo(f"{len(sources)} file(s) valid")


@processes_cli.command("deploy")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--actor", default="cli", help="Who deploys (recorded on each new version).")
@with_appcontext
def deploy_command(paths, actor):
    """Store a new version of every changed process (default: the processes directory)."""
    from engine.errors import DefinitionInvalid
    from engine.processes import deploy_paths

    try:
        results = deploy_paths(runtime_of(current_app), list(paths), actor)
    except DefinitionInvalid as exc:
        _print_problems(exc.problems)
        _fail(exc.message)
    for r in results:
        click.echo(f"{r['process_id']} v{r['version']} {'deployed' if r['new'] else 'unchanged'} ({r['source']})")


@processes_cli.command("list")
@with_appcontext
def list_command():
    """List the deployed definitions and their versions."""
    from engine.processes import list_definitions

    for r in list_definitions(runtime_of(current_app)):
        click.echo(f"{r['process_id']} v{r['version']} {r['sha256'][:12]} {r['deployed_at']} by {r['deployed_by']}")


@click.command("serve")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@with_appcontext
def serve_command(host, port):
    """Set up the database, deploy the processes, and serve the API (embedded mode)."""
    from flask_migrate import upgrade

    from engine.processes import deploy_paths

    upgrade(directory=str(ROOT / "migrations"))
    for r in deploy_paths(runtime_of(current_app), None, "serve"):
        click.echo(f"{r['process_id']} v{r['version']} {'deployed' if r['new'] else 'unchanged'}")
    current_app.run(host=host, port=port, threaded=True, use_reloader=False)
