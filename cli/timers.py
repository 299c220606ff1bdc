"""`flask timers`: run a timer worker, fire what is due, list the next timers."""
from __future__ import annotations

import click
from flask.cli import AppGroup, with_appcontext

from cli import runtime

timers_cli = AppGroup("timers", help="The deadline timer service.")


@timers_cli.command("run")
@click.option("--worker", default=None, help="Worker name (default: host:pid:random).")
@click.option("--threads", default=None, type=int, help="Firing threads (default: 1 on SQLite, 2 otherwise).")
@with_appcontext
def timers_run_command(worker, threads):
    """Run a standalone timer worker until SIGTERM or Ctrl-C (scale-out mode)."""
    import signal
    import threading

    from cli.production import freeze_startup_heap
    from timers import TimerService

    freeze_startup_heap()  # the collector's full passes skip what lives as long as the worker (cli.production)
    service = TimerService(runtime(), worker, threads=threads).start()
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

    service = TimerService(runtime())
    click.echo(service.run_until_idle())


@timers_cli.command("list")
@click.option("--limit", default=20, type=int)
@with_appcontext
def timers_list_command(limit):
    """The next pending timers, earliest first."""
    from engine.core.timers import upcoming_timers

    for t in upcoming_timers(runtime(), limit):
        failed = (f"  held by incident #{t['incident_id']}" if t["incident_id"] else
                  f"  failed {t['tries']}x, next try {t['retry_at']}" if t["retry_at"] else "")
        click.echo(f"{t['due_at']}  {t['case_no']}  {t['kind']:5}  {t['element']}  {t['claimed_by'] or ''}{failed}")
