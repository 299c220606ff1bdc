"""`flask idempotency`: housekeeping of the stored Idempotency-Key responses."""
from __future__ import annotations

import click
from flask.cli import AppGroup, with_appcontext

from cli import run_service, runtime

idempotency_cli = AppGroup("idempotency", help="Stored responses of requests sent with an Idempotency-Key.")


@idempotency_cli.command("purge")
@with_appcontext
def idempotency_purge_command():
    """Delete the expired keys (older than IDEMPOTENCY_KEY_TTL); run it daily, e.g. from cron."""
    from engine.services.idempotency import purge_expired

    click.echo(f"{run_service(purge_expired, runtime())} expired idempotency key(s) purged")
