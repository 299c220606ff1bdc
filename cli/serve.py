"""`flask serve`, `flask demo` and `flask training init`: set up the database and processes, then serve the API
(with the timer service), on the real clock or, on a demo or training instance, a sped-up one.

`flask serve` is the production server: gunicorn workers and the timer service once beside them
(cli.production). `flask demo` keeps the simple path: one process, Werkzeug's threaded server and the
embedded timer service."""
from __future__ import annotations

import os
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from cli import fail, run_service, runtime
from engine.services.signin import DEMO_PASSWORD

SPEED = click.option("--speed", default=1.0, type=click.FloatRange(min=0, min_open=True), show_default=True,
                     help="Run the API and its timers on a clock N times faster than real time, from now "
                          "(demo and training instances only).")


@click.command("serve")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@click.option("--timers/--no-timers", default=True,
              help="Run the timer service beside the API (once, in this process); --no-timers when "
                   "`flask timers run` workers fire them elsewhere.")
@click.option("--workers", default=None, type=click.IntRange(min=1),
              help="gunicorn worker processes [default: $WEB_CONCURRENCY, else the number of cores]")
@click.option("--threads", default=None, type=click.IntRange(min=1),
              help="Threads per worker [default: $SERVE_THREADS, else 4]")
@click.option("--graceful-timeout", default=30, type=click.IntRange(min=1), show_default=True,
              help="Seconds a stopping worker gets to finish the requests in flight.")
@SPEED
@with_appcontext
def serve_command(host, port, timers, workers, threads, graceful_timeout, speed):
    """Set up the database, deploy the processes, and serve the API with gunicorn (cli.production)."""
    from engine.services.instance import PRACTICE, instance_purpose

    if speed != 1 and not timers:
        # The sped-up clock lives in this process: standalone timer workers would fire on the real one.
        fail("--speed needs the embedded timer service (leave out --no-timers)", code=2)
    if speed != 1 and (purpose := run_service(instance_purpose, runtime())) not in PRACTICE:
        # Refused before anything is changed: production data never sees time run fast.
        fail(f"--speed is only for an instance created for demo or training; this one is {purpose} "
             "(create one with `flask demo` or `flask training init` on a new database)", code=2)
    _prepare()
    # A worker per core on either database: SQLite's one writer is held only for a completion's writes (its
    # step is computed before the lock: engine.store.db, optimistic writes), so a second process uses the
    # second core (HTTP bench, 4 clients: 57 completions/s with one worker of 4 threads, 92-97 with two).
    default_workers = os.cpu_count() or 2
    workers = workers or int(os.environ.get("WEB_CONCURRENCY") or default_workers)
    threads = threads or int(os.environ.get("SERVE_THREADS") or 4)
    raise SystemExit(_serve_production(host, port, timers, speed, workers, threads, graceful_timeout))


@click.command("demo")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@SPEED
@click.option("--rotate-tokens", is_flag=True,
              help="Issue new tokens to every demo user (their earlier ones stop working).")
@click.option("--prepare-only", is_flag=True, help="Set the demo instance up and exit without serving.")
@with_appcontext
def demo_command(host, port, speed, rotate_tokens, prepare_only):
    """Quick start: schema, processes, the demo organisation and users, then serve with the timer service."""
    token_file = _prepare_demo(rotate_tokens, speed)
    click.echo(f"console: http://{host}:{port}/  (sign in as yjp_acceptor, password {DEMO_PASSWORD})")
    click.echo(f"try: curl http://{host}:{port}/api/v1/me -H \"Authorization: Bearer $(grep ^yjp_acceptor "
               f"{token_file} | cut -f2)\"   (API docs: http://{host}:{port}/api/docs)")
    if not prepare_only:
        _serve(host, port, True, speed)


@click.group("training")
def training_cli():
    """Training instances: a database of practice cases that may run on a sped-up clock."""


@training_cli.command("init")
@with_appcontext
def training_init_command():
    """Set up the schema and processes and mark this (new) instance as a training one."""
    from engine.services.instance import mark_instance

    _prepare()
    result = run_service(mark_instance, runtime(), "training", "cli")
    click.echo("instance marked for training" if result["marked"] else "instance already marked for training")
    click.echo("load users with `flask seed demo` or `flask users create`; serve with `flask serve --speed N`")


def _prepare() -> None:
    """Upgrade the schema and deploy every changed process under the processes directory."""
    from flask_migrate import upgrade

    from engine.services.processes import deploy_paths

    upgrade(directory=current_app.extensions["migrate"].directory)
    for r in deploy_paths(runtime(), None, "serve"):
        click.echo(f"{r['process_id']} v{r['version']} {'deployed' if r['new'] else 'unchanged'}")
    from engine.services.assessment import deploy_rules

    r = run_service(deploy_rules, runtime(), "serve")
    click.echo(f"assessment rules v{r['version']} {'deployed' if r['new'] else 'unchanged'}")


def _prepare_demo(rotate_tokens: bool, speed: float) -> Path:
    """Schema, processes, the demo mark, organisation and users; the token file kept valid. Returns its path."""
    from engine.errors import Conflict
    from engine.services.instance import mark_instance
    from engine.services.demo_procedures import seed_demo_procedures
    from engine.services.seed import seed_demo
    from engine.services.signin import set_demo_passwords

    _prepare()
    try:
        mark_instance(runtime(), "demo", "demo")
    except Conflict as exc:
        if speed != 1:
            fail(f"--speed refused: {exc.message}", code=2)
        click.echo(f"note: {exc.message}", err=True)
    token_file = Path(current_app.config["DEMO_TOKEN_FILE"])
    kept = {} if rotate_tokens else read_token_file(token_file)
    result = run_service(seed_demo, runtime(), rotate_tokens=rotate_tokens, keep_tokens=kept)
    users = [u for u in result["users"] if u["token"]]
    given = run_service(set_demo_passwords, runtime(), [u["username"] for u in result["users"]])
    if given:
        click.echo(f"console passwords: {given} demo user(s) got the demo password {DEMO_PASSWORD}")
    token_file.write_text("".join(f"{u['username']}\t{u['token']}\n" for u in users))
    token_file.chmod(0o600)
    renewed = sum(u["token"] != kept.get(u["username"]) for u in users)
    run_service(seed_demo_procedures, runtime())  # the screening schedules and a demo stability assessment
    click.echo(f"demo organisation loaded; tokens of the {len(users)} demo users in {token_file} "
               f"({len(users) - renewed} kept, {renewed} new)")
    return token_file


def read_token_file(path: Path) -> dict[str, str]:
    """username → token from a `username<TAB>token` file (empty if there is none)."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        fail(f"cannot read {path}: {exc}")
    return dict(line.split("\t", 1) for line in lines if line.count("\t") == 1)


def _serve(host: str, port: int, timers: bool, speed: float = 1.0) -> None:
    _install_clock(speed)
    service = None
    if timers:
        from timers import TimerService

        from cli.outbox import build_dispatcher

        outbox = build_dispatcher(current_app._get_current_object())
        service = TimerService(runtime(), outbox=outbox).start()
        click.echo(f"timer service {service.worker} running (embedded), delivering notifications by "
                   f"{', '.join(sorted(outbox.channels))}")
    from werkzeug.serving import run_simple

    try:
        # Flask 3 ignores app.run() inside a `flask` command: serve with werkzeug directly.
        run_simple(host, port, current_app._get_current_object(), threaded=True, use_reloader=False)
    finally:
        if service is not None:
            service.stop()


def _serve_production(host, port, timers, speed, workers, threads, graceful_timeout) -> int:
    from cli import production
    from engine import logcontext

    app = current_app._get_current_object()
    if not os.environ.get("LOG_FORMAT"):  # production logs are JSON lines unless told otherwise
        app.config["LOG_FORMAT"] = "json"
    # After the migrations' fileConfig: our handler and format back, every logger enabled again.
    logcontext.configure_logging(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"], force=True)
    _install_clock(speed)

    def start_timers():
        if not timers:
            return None
        from timers import TimerService

        from cli.outbox import build_dispatcher

        outbox = build_dispatcher(app)
        service = TimerService(runtime(), outbox=outbox).start()
        click.echo(f"timer service {service.worker} running (once, beside {workers} API worker(s)), delivering "
                   f"notifications by {', '.join(sorted(outbox.channels))}", err=True)
        return service.stop

    click.echo(f"serving on http://{host}:{port} with gunicorn: {workers} worker(s) x {threads} thread(s)", err=True)
    return production.run(app, production.options(app, host, port, workers, threads, graceful_timeout), start_timers)


def _install_clock(speed: float) -> None:
    """A demo or training instance runs on its own clock (at `speed`); any other on the real one."""
    from engine import clock
    from engine.services.instance import PRACTICE, instance_purpose, practice_clock

    if run_service(instance_purpose, runtime()) not in PRACTICE:
        return
    practice = run_service(practice_clock, runtime(), speed)
    clock.set_clock(practice)
    at = practice.now().astimezone(runtime().tz).isoformat(timespec="seconds")
    click.echo(f"instance clock: {at}" + (f", {speed:g}x real time" if speed != 1 else ""))
