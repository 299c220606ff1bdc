"""`flask outbox`: run a dispatcher, list the notifications, retry one, set a recipient's contact.

`build_dispatcher(app)` is the composition root of delivery: it builds the
channels (channels/) and the dispatcher settings from the app's configuration
(app.config over the environment), for `flask outbox run` and for the timer
service's embedded dispatcher alike.
"""
from __future__ import annotations

import os

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from cli import fail, run_service, runtime

outbox_cli = AppGroup("outbox", help="Delivery of notifications (SMS, e-mail, webhooks).")


def outbox_config(app: Flask) -> dict:
    return {**os.environ, **{k: v for k, v in app.config.items() if isinstance(k, str)}}


def build_dispatcher(app: Flask, worker: str | None = None):
    from channels import build_channels
    from engine.services.outbox import Dispatcher, Settings

    config = outbox_config(app)
    try:
        return Dispatcher(app.extensions["dispute_runtime"], build_channels(config), Settings.from_config(config),
                          worker)
    except ValueError as exc:  # a template refused, a setting that is not a number or a time
        fail(f"outbox: {exc}")


@outbox_cli.command("run")
@click.option("--worker", default=None, help="Worker name (default: outbox:host:pid:random).")
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit.")
@with_appcontext
def outbox_run_command(worker, once):
    """Run a standalone dispatcher until SIGTERM or Ctrl-C (several may run on PostgreSQL)."""
    import signal
    import threading

    dispatcher = build_dispatcher(current_app._get_current_object(), worker)
    if once:
        click.echo(run_service(dispatcher.run_until_idle))
        return
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    click.echo(f"outbox dispatcher {dispatcher.worker} running (channels: {', '.join(sorted(dispatcher.channels))})",
               err=True)
    dispatcher.run(stopping)
    click.echo(f"outbox dispatcher {dispatcher.worker} stopped: {dispatcher.outcomes}", err=True)


@outbox_cli.command("list")
@click.option("--status", default=None, help="pending, sending, sent, failed or dead")
@click.option("--channel", default=None)
@click.option("--case", "case_no", default=None, help="a case number")
@click.option("--limit", default=50, type=int)
@with_appcontext
def outbox_list_command(status, channel, case_no, limit):
    """The newest notifications and their delivery status."""
    from engine.services.notifications import list_outbox
    from engine.store.outbox_state import MessageState

    if status and status not in {s.value for s in MessageState}:
        fail(f"unknown status {status!r}: one of {', '.join(s.value for s in MessageState)}")
    page = run_service(list_outbox, runtime(), _admin(), {"status": status, "channel": channel, "case": case_no,
                                                          "per_page": max(1, min(limit, 100))})
    for m in page["items"]:
        click.echo(f"{m['id']:>6}  {m['status']:7}  {m['channel']:7}  {m['kind']:13}  {m['case_no'] or '-':12}  "
                   f"{m['recipient_kind']}:{m['recipient']}  tries={m['attempts']}  {m['last_error'] or ''}")
    click.echo(f"{page['total']} message(s)", err=True)


@outbox_cli.command("retry")
@click.argument("message_id", type=int)
@with_appcontext
def outbox_retry_command(message_id):
    """Send a failed or dead notification again."""
    from engine.services.notifications import retry_message

    m = run_service(retry_message, runtime(), message_id, _admin())
    click.echo(f"message {m['id']} is {m['status']} again")


@outbox_cli.command("contact")
@click.argument("kind", type=click.Choice(["unit", "user"]))
@click.argument("code")
@click.option("--phone")
@click.option("--email")
@click.option("--webhook-url")
@click.option("--webhook-secret")
@click.option("--channel", "notify_channel", type=click.Choice(["sms", "email", "webhook"]))
@with_appcontext
def outbox_contact_command(kind, code, phone, email, webhook_url, webhook_secret, notify_channel):
    """Set where a unit's or user's notifications go (an empty value clears a field)."""
    from engine.services.notifications import set_contact

    click.echo(run_service(set_contact, runtime(), kind, code, phone=phone, email=email, webhook_url=webhook_url,
                           webhook_secret=webhook_secret, notify_channel=notify_channel))


def _admin():
    """The command line speaks as the administrator (whoever may run it may read the database)."""
    from engine.rules.access import Caller

    return Caller("cli", "command line", "", "", frozenset({"admin"}))
