"""`flask serve` and `flask demo`: set up the database and processes, then serve the API (with the embedded timer service)."""
from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from cli import run_service, runtime


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
    from engine.services.seed import seed_demo

    _prepare()
    result = run_service(seed_demo, runtime(), rotate_tokens=True)
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

    from engine.services.processes import deploy_paths

    upgrade(directory=current_app.extensions["migrate"].directory)
    for r in deploy_paths(runtime(), None, "serve"):
        click.echo(f"{r['process_id']} v{r['version']} {'deployed' if r['new'] else 'unchanged'}")


def _serve(host: str, port: int, timers: bool) -> None:
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
