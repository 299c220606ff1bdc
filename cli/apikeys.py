"""`flask apikeys`: the client systems (Open311 clients, hotlines, 110, the grid app) and their API keys."""
from __future__ import annotations

import click
from flask.cli import AppGroup, with_appcontext

from cli import run_service, runtime

apikeys_cli = AppGroup("apikeys", help="Client systems and their API keys (Open311, integrated intake).")


@apikeys_cli.command("create")
@click.argument("name")
@click.option("--kind", type=click.Choice(["open311", "intake"]), required=True,
              help="open311: a GeoReport v2 client; intake: an integrated system posting to /api/v1/intake.")
@click.option("--channel", required=True,
              help="The intake channel of its cases: hotline_12345, hotline_12348, police_110, grid_worker, web, ...")
@click.option("--callback-url", default=None, help="Where status callbacks (webhooks) go.")
@click.option("--callback-secret", default=None, help="The shared secret signing the callbacks (16+ characters).")
@with_appcontext
def apikeys_create_command(name, kind, channel, callback_url, callback_secret):
    """Register a client system and print its API key (shown once; only its hash is stored)."""
    from engine.services.clients import create_client

    row = run_service(create_client, runtime(), name, kind, channel, callback_url=callback_url,
                      callback_secret=callback_secret, created_by="cli")
    click.echo(f"created {row['name']} ({row['kind']}, channel {row['channel']}, id {row['id']})", err=True)
    click.echo(row["api_key"])


@apikeys_cli.command("list")
@with_appcontext
def apikeys_list_command():
    """List the client systems, their kinds, channels and key prefixes."""
    from engine.services.clients import list_clients

    for c in run_service(list_clients, runtime()):
        state = " (revoked)" if c["revoked"] else ""
        click.echo(f"{c['id']:>4} {c['name']:24} {c['kind']:8} {c['channel']:14} {c['key_prefix']}…"
                   f" {c['callback_url'] or '-'}{state}")


@apikeys_cli.command("revoke")
@click.argument("client")
@with_appcontext
def apikeys_revoke_command(client):
    """Revoke the key of a client system (by name or id)."""
    from engine.services.clients import revoke_client

    row = run_service(revoke_client, runtime(), client)
    click.echo(f"revoked {row['name']}")
