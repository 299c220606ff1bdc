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
    app.config.from_mapping(SECRET_KEY=os.environ.get("SECRET_KEY", "dev"))
    app.json.ensure_ascii = False  # Chinese names and texts readable in every response
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
    app.cli.add_command(demo_command)
    app.cli.add_command(timers_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(seed_cli)
    app.cli.add_command(audit_cli)
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
    """Check BPMN/DMN files (default: the processes directory): each file's verdict; exit 1 on any problem."""
    from engine.definitions import read_sources
    from engine.processes import validate_files

    rt = runtime_of(current_app)
    sources = read_sources(paths or [rt.processes_dir])
    if not sources:
        _fail("no .bpmn or .dmn file found")
    verdict = validate_files(rt, sources)
    for entry in verdict["files"]:
        count = len(entry["problems"])
        click.echo(f"{entry['file']}: {f'{count} problem(s)' if count else 'OK'}")
        _print_problems(entry["problems"])
    bad = sum(1 for entry in verdict["files"] if entry["problems"])
    if bad:
        _fail(f"{bad} of {len(sources)} file(s) have problems")
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


@processes_cli.command("diff")
@click.argument("process_id")
@click.argument("old", type=int)
@click.argument("new", type=int)
@with_appcontext
def diff_command(process_id, old, new):
    """Name the elements added, removed and changed between two versions of a process."""
    from engine.errors import DefinitionNotFound
    from engine.processes import diff_versions

    try:
        d = diff_versions(runtime_of(current_app), process_id, old, new)
    except DefinitionNotFound as exc:
        _fail(exc.message)
    for sign, key in (("+", "added"), ("-", "removed")):
        for e in d[key]:
            click.echo(f"{sign} {e['element']} ({e['type']}{', ' + e['name'] if e['name'] else ''})")
    for e in d["changed"]:
        click.echo(f"~ {e['element']} ({e['type']})")
        for c in e["changes"]:
            click.echo(f"    {c['field']}: {c['from']!r} -> {c['to']!r}")
    if not any(d[k] for k in ("added", "removed", "changed")):
        click.echo(f"{process_id} v{old} and v{new} have the same elements")


@click.command("serve")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@click.option("--timers/--no-timers", default=True, help="Run the timer service inside the server (embedded).")
@with_appcontext
def serve_command(host, port, timers):
    """Set up the database, deploy the processes, and serve the API (embedded mode)."""
    _prepare()
    _serve(host, port, timers)


@click.command("demo")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@with_appcontext
def demo_command(host, port):
    """Quick start: schema, processes, the demo organisation and users, then serve with the timer service."""
    from engine.seed import seed_demo

    _prepare()
    result = _service(seed_demo, runtime_of(current_app), rotate_tokens=True)
    token_file = Path(current_app.instance_path) / "demo_tokens.tsv"
    token_file.write_text("".join(f"{u['username']}\t{u['token']}\n" for u in result["users"] if u["token"]))
    token_file.chmod(0o600)
    click.echo(f"demo organisation loaded; tokens of the {len(result['users'])} demo users in {token_file}")
    click.echo(f"try: curl http://{host}:{port}/api/v1/me -H \"Authorization: Bearer $(grep ^yjp_acceptor "
               f"{token_file} | cut -f2)\"   (API docs: http://{host}:{port}/api/docs)")
    _serve(host, port, True)


def _prepare() -> None:
    """Upgrade the schema and deploy every changed process under the processes directory."""
    from flask_migrate import upgrade

    from engine.processes import deploy_paths

    upgrade(directory=str(ROOT / "migrations"))
    for r in deploy_paths(runtime_of(current_app), None, "serve"):
        click.echo(f"{r['process_id']} v{r['version']} {'deployed' if r['new'] else 'unchanged'}")


def _serve(host: str, port: int, timers: bool) -> None:
    service = None
    if timers:
        from timers import TimerService

        service = TimerService(runtime_of(current_app)).start()
        click.echo(f"timer service {service.worker} running (embedded)")
    from werkzeug.serving import run_simple

    try:
        # Flask 3 ignores app.run() inside a `flask` command: serve with werkzeug directly.
        run_simple(host, port, current_app._get_current_object(), threaded=True, use_reloader=False)
    finally:
        if service is not None:
            service.stop()


timers_cli = AppGroup("timers", help="The deadline timer service.")


@timers_cli.command("run")
@click.option("--worker", default=None, help="Worker name (default: host:pid:random).")
@click.option("--threads", default=None, type=int, help="Firing threads (default: 1 on SQLite, 2 otherwise).")
@with_appcontext
def timers_run_command(worker, threads):
    """Run a standalone timer worker until SIGTERM or Ctrl-C (scale-out mode)."""
    import signal
    import threading

    from timers import TimerService

    service = TimerService(runtime_of(current_app), worker, threads=threads).start()
    click.echo(f"timer worker {service.worker} running", err=True)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    stopping.wait()
    service.stop()
    click.echo(f"timer worker {service.worker} stopped: {service.outcomes}", err=True)


@timers_cli.command("fire-due")
@with_appcontext
def timers_fire_due_command():
    """Fire every timer that is due now, once, and exit."""
    from timers import TimerService

    service = TimerService(runtime_of(current_app))
    click.echo(service.run_until_idle())


@timers_cli.command("list")
@click.option("--limit", default=20, type=int)
@with_appcontext
def timers_list_command(limit):
    """The next pending timers, earliest first."""
    from engine.timers import upcoming_timers

    for t in upcoming_timers(runtime_of(current_app), limit):
        click.echo(f"{t['due_at']}  {t['case_no']}  {t['kind']:5}  {t['element']}  {t['claimed_by'] or ''}")


# -- users, tokens and demo data (thin: each command calls one service function) --------

users_cli = AppGroup("users", help="API users, their roles and bearer tokens.")
seed_cli = AppGroup("seed", help="Load demo data.")


def _service(fn, *args, **kwargs):
    """Run a service function; a domain or database error is a message and exit 1, never a traceback."""
    from sqlalchemy.exc import SQLAlchemyError

    from engine.errors import CaseError

    try:
        return fn(*args, **kwargs)
    except CaseError as exc:
        details = "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in exc.errors.items())
        _fail(f"{exc.message}{' (' + details + ')' if details else ''}")
    except SQLAlchemyError as exc:
        _fail(f"database error: {getattr(exc, 'orig', None) or exc}\n(is the schema up to date? flask db upgrade)")


@users_cli.command("create")
@click.argument("username")
@click.option("--unit", "unit_code", required=True, help="The user's unit code (processes/organisation.toml).")
@click.option("--role", "roles", multiple=True, required=True,
              help="A role (repeatable): acceptor, grid_worker, handler, dispatcher, leader, supervisor, "
                   "auditor, designer, admin.")
@click.option("--name", "display_name", default=None, help="Display name (default: the username).")
@with_appcontext
def users_create_command(username, unit_code, roles, display_name):
    """Create a user in a unit with one or more roles."""
    from engine.org import create_user

    user = _service(create_user, runtime_of(current_app), username, unit_code, roles, display_name)
    click.echo(f"created {user['username']} in {user['unit']['code']} as {', '.join(user['roles'])}")


@users_cli.command("token")
@click.argument("username")
@click.option("--revoke-others", is_flag=True, help="Revoke the user's earlier tokens.")
@with_appcontext
def users_token_command(username, revoke_others):
    """Print a new bearer token for the user (shown once; only its hash is stored)."""
    from engine.org import issue_token

    click.echo(_service(issue_token, runtime_of(current_app), username, revoke_others=revoke_others))


@users_cli.command("list")
@with_appcontext
def users_list_command():
    """List the users, their units and roles."""
    from engine.org import list_users

    for u in _service(list_users, runtime_of(current_app)):
        state = "" if u["active"] else " (inactive)"
        click.echo(f"{u['username']:20} {u['unit']['code']:14} {','.join(u['roles'])}{state}")


@seed_cli.command("demo")
@click.option("--print-tokens", is_flag=True,
              help="Issue fresh tokens to every demo user (revoking their earlier ones) and print them.")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the tokens issued by this run to this file (username<TAB>token) instead of printing.")
@with_appcontext
def seed_demo_command(print_tokens, token_file):
    """Load the demo organisation and its users (idempotent); tokens only for new users or on request."""
    from engine.seed import seed_demo

    result = _service(seed_demo, runtime_of(current_app), rotate_tokens=print_tokens)
    users = result["users"]
    issued = [(u["username"], u["token"]) for u in users if u["token"]]
    click.echo(f"units: {result['units_changed']} changed; users: {sum(u['created'] for u in users)} created, "
               f"{sum(u['updated'] for u in users)} updated, {len(users)} in the demo file", err=True)
    lines = "".join(f"{name}\t{token}\n" for name, token in issued)
    if token_file is not None and issued:
        token_file.write_text(lines)
        token_file.chmod(0o600)
        click.echo(f"wrote {len(issued)} token(s) to {token_file}", err=True)
    elif token_file is not None:
        click.echo("no tokens issued (every demo user exists); --print-tokens rotates them", err=True)
    elif issued:
        click.echo(lines, nl=False)


# -- audit: replay, verify, migrate (thin: each command calls one service function) -------

audit_cli = AppGroup("audit", help="Replay and verify case logs; migrate running cases to another version.")


@audit_cli.command("replay")
@click.argument("case_no")
@click.option("--until", type=int, default=None, help="Stop after event N and show the state then.")
@with_appcontext
def audit_replay_command(case_no, until):
    """Rebuild a case from its definition version and events alone; exit 1 if it diverges."""
    from engine.audit import replay_case

    result = _service(replay_case, runtime_of(current_app), case_no, until=until)
    for s in result["steps"]:
        where = f" {s['element']}" + (f" [{s['lane']}]" if s["lane"] else "") if s["element"] else ""
        data = f" {s['payload']}" if s["payload"] else ""
        click.echo(f"{s['seq']:4} {s['at']} {s['actor']:20} {s['type']}{where}{data}")
    if "as_of" in result:
        as_of = result["as_of"]
        click.echo(f"as of event {as_of['seq']}: open " + (", ".join(
            f"{t['element']} ({t['assignee'] or 'unclaimed'})" for t in as_of["open_tasks"]) or "none")
            + "; waiting " + (", ".join(f"{t['element']} {t['due_at']}" for t in as_of["waiting_timers"]) or "none")
            + f"; deadlines fired {len(as_of['deadlines_fired'])}")
    click.echo(f"{result['case_no']}: {result['verdict']}")
    if not result["consistent"]:
        raise SystemExit(1)


@audit_cli.command("verify")
@click.argument("case_nos", nargs=-1)
@click.option("--all", "all_cases", is_flag=True, help="Verify every case.")
@with_appcontext
def audit_verify_command(case_nos, all_cases):
    """Check each case's hash chain, stored state and replay; exit 1 naming the case and event on any mismatch."""
    import time

    from engine.audit import verify_cases

    if not case_nos and not all_cases:
        _fail("name one or more cases, or --all")
    started = time.perf_counter()
    result = _service(verify_cases, runtime_of(current_app), None if all_cases else list(case_nos))
    elapsed = time.perf_counter() - started
    for r in result["results"]:
        click.echo(f"{r['case_no']}: event {r['seq']}: {r['problem']}", err=True)
    click.echo(f"{result['checked']} case(s) verified in {elapsed:.2f}s, {result['failed']} failed")
    if result["failed"]:
        raise SystemExit(1)


@audit_cli.command("migrate")
@click.argument("case_nos", nargs=-1, required=True)
@click.option("--to-version", type=int, required=True, help="The version of the case's process to move to.")
@click.option("--dry-run", is_flag=True, help="Only replay each case on the new version and report.")
@click.option("--actor", default="cli", help="Who migrates (recorded in the case_migrated event).")
@with_appcontext
def audit_migrate_command(case_nos, to_version, dry_run, actor):
    """Move running cases to another version after replaying their history on it; exit 1 if any is refused."""
    from engine.audit import migrate_cases

    results = _service(migrate_cases, runtime_of(current_app), list(case_nos), to_version, dry_run, actor)
    for r in results:
        reason = f": {r['reason']}" if r["reason"] else ""
        click.echo(f"{r['case_no']} v{r['from']} -> v{r['to']}: {r['outcome']}{reason}")
    if any(r["outcome"] == "refused" for r in results):
        raise SystemExit(1)
