"""`flask screening`: start the periodic screening schedules, list the rounds, read the people's log."""
from __future__ import annotations

import json

import click
from flask.cli import AppGroup, with_appcontext

from cli import run_service, runtime

screening_cli = AppGroup("screening", help="Periodic screening (矛盾排查) and the people's-conditions log (民情日志).")


@screening_cli.command("start")
@click.argument("levels", nargs=-1)
@click.option("--days", type=click.IntRange(1, 3660), default=366, show_default=True,
              help="how long the schedule runs")
@with_appcontext
def start_command(levels, days):
    """Start the schedule of each LEVEL of processes/screening.toml (all when none is named); idempotent."""
    from engine.services import screening

    rt = runtime()
    for level in levels or tuple(rt.tables.screening.levels):
        case = run_service(screening.start_schedule, rt, level, "cli", days)
        click.echo(f"{level}: case {case['case_no']} {'started' if case['started'] else 'already running'}")


@screening_cli.command("rounds")
@click.option("--level", default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@with_appcontext
def rounds_command(level, limit):
    """The latest screening rounds and their findings, one JSON object a line."""
    from engine.services import screening

    for r in run_service(screening.list_rounds, runtime(), level, limit):
        click.echo(json.dumps(r, ensure_ascii=False))


@screening_cli.command("log")
@click.option("--grid", default=None)
@click.option("--worker", default=None)
@click.option("--community", default=None)
@click.option("--topic", default=None)
@click.option("--from", "since", default=None, help="YYYY-MM-DD, inclusive")
@click.option("--to", "until", default=None, help="YYYY-MM-DD, inclusive")
@click.option("--counts", "by", type=click.Choice(["grid", "worker", "day", "week", "month"]), default=None,
              help="print counts per grid, worker or period instead of the entries")
@with_appcontext
def log_command(grid, worker, community, topic, since, until, by):
    """People's-conditions log entries (or their counts), filtered."""
    from engine.services import people_log

    filters = {k: v for k, v in (("grid", grid), ("worker", worker), ("community", community), ("topic", topic),
                                 ("from", since), ("to", until)) if v is not None}
    if by is not None:
        rows = run_service(people_log.count_entries, runtime(), by, filters)
    else:
        rows = run_service(people_log.list_entries, runtime(), filters, 1000)["items"]
    if not rows:
        click.echo("no entries")
    for row in rows:
        click.echo(json.dumps(row, ensure_ascii=False))
