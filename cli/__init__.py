"""The command line: one module per command group, each command calling one service function.

`register_commands(app)` adds every group to `flask`; this module holds what they share: the
runtime of the current app, and turning a domain or database error into a message and exit 1
(never a traceback).
"""
from __future__ import annotations

import click
from flask import Flask, current_app


def runtime():
    """The engine runtime of the app the command runs in."""
    return current_app.extensions["dispute_runtime"]


def register_commands(app: Flask) -> None:
    from cli import (apikeys, audit, idempotency, incidents, org, outbox, processes, report, screening, serve,
                     simulate, timers, users)

    for group in (
        processes.processes_cli,
        serve.serve_command,
        serve.demo_command,
        serve.training_cli,
        timers.timers_cli,
        users.users_cli,
        users.seed_cli,
        audit.audit_cli,
        report.report_cli,
        simulate.simulate_command,
        apikeys.apikeys_cli,
        org.org_cli,
        outbox.outbox_cli,
        idempotency.idempotency_cli,
        incidents.incidents_cli,
        screening.screening_cli,
    ):
        app.cli.add_command(group)


def fail(message: str, code: int = 1):
    click.echo(message, err=True)
    raise SystemExit(code)


def print_problems(problems: list[dict]) -> None:
    for p in problems:
        where = ":".join(str(x) for x in (p.get("file"), p.get("line")) if x)
        element = f" [{p['element']}]" if p.get("element") else ""
        fix = f"\n    fix: {p['fix']}" if p.get("fix") else ""
        click.echo(f"{where}{element}: {p['reason']}{fix}", err=True)


def run_service(fn, *args, **kwargs):
    """Run a service function; a domain or database error is a message and exit 1, never a traceback."""
    from sqlalchemy.exc import SQLAlchemyError

    from engine.errors import CaseError

    try:
        return fn(*args, **kwargs)
    except CaseError as exc:
        details = "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in exc.errors.items())
        fail(f"{exc.message}{' (' + details + ')' if details else ''}")
    except SQLAlchemyError as exc:
        fail(f"database error: {getattr(exc, 'orig', None) or exc}\n(is the schema up to date? flask db upgrade)")
