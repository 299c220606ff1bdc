"""`flask report`: statistics for any period, the monthly assessment and its XLSX, closing a month."""
from __future__ import annotations

import json
from pathlib import Path

import click
from flask.cli import AppGroup, with_appcontext

from cli import fail, run_service, runtime

report_cli = AppGroup("report", help="Statistics (综合统计) and the monthly assessment (月度考核).")


@report_cli.command("stats")
@click.option("--from", "first", required=True, type=click.DateTime(["%Y-%m-%d"]), help="First day, YYYY-MM-DD.")
@click.option("--to", "last", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Last day, inclusive.")
@click.option("--basis", type=click.Choice(["accepted", "reported"]), default="accepted",
              help="Select cases by acceptance time (default) or by reported_at.")
@click.option("--group-by", type=click.Choice(["unit", "category", "channel", "level", "community"]), default=None)
@click.option("--unit", default=None, help="Only this unit's subtree.")
@click.option("--category", default=None)
@click.option("--channel", default=None)
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write one row per group to this CSV file.")
@with_appcontext
def stats_command(first, last, basis, group_by, unit, category, channel, csv_file):
    """The figures for a period (JSON on standard output, or CSV to a file)."""
    from engine.services import reports, statistics

    rt = runtime()
    p = run_service(statistics.period, rt, first.date(), last.date(), basis)
    result = run_service(statistics.compute_statistics, rt, None, p, group_by, unit, category, channel)
    if csv_file is not None:
        csv_file.write_text(reports.statistics_csv(result), encoding="utf-8")
        click.echo(f"wrote {max(1, len(result['groups']))} row(s) to {csv_file}", err=True)
    else:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))


@report_cli.command("monthly")
@click.argument("month")
@click.option("--xlsx", "xlsx_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the monthly report workbook (cover, groupings, ranking, trend, charts) to this file.")
@with_appcontext
def monthly_command(month, xlsx_file):
    """The monthly assessment of MONTH (YYYY-MM): scores and ranks; frozen once the month is closed."""
    from engine.services import assessment, reports

    rt = runtime()
    result = run_service(assessment.monthly_assessment, rt, month)
    state = f"closed {result['closed_at']}" if result["closed"] else "provisional (not closed)"
    total = result["statistics"]
    click.echo(f"{month}: {state}; rules v{result['rules_version']}; accepted {total['accepted']}, completed "
               f"{total['completed']}, completion rate {total['completion_rate']}, satisfaction "
               f"{total['satisfaction_rate']}, supervised {total['supervised']}")
    for u in result["units"]:
        change = "" if u["change"] is None else f" ({u['change']:+})"
        click.echo(f"  {u['peer_group']:10} {u['rank']:>3}/{u['peers']:<3} {u['unit']:14} {u['score']:6}{change}  "
                   f"{u['name']}")
    if xlsx_file is not None:
        xlsx_file.write_bytes(run_service(reports.monthly_workbook, rt, None, month))
        click.echo(f"wrote {xlsx_file}", err=True)


@report_cli.command("close")
@click.argument("month")
@click.option("--actor", default="cli", help="Who closes the month (recorded).")
@with_appcontext
def close_command(month, actor):
    """Close MONTH (YYYY-MM) once it is over: its figures and assessment are frozen from then on."""
    from engine.services import assessment

    result = run_service(assessment.close_month, runtime(), month, actor)
    click.echo(f"{month} closed at {result['closed_at']} (rules v{result['rules_version']}, sha256 "
               f"{result['sha256'][:12]})")


@report_cli.command("verify")
@click.argument("month")
@with_appcontext
def verify_command(month):
    """Check a closed month: its stored hash, and that recomputing it gives the same figures."""
    from engine.services import assessment

    result = run_service(assessment.verify_month, runtime(), month)
    click.echo(f"{month}: hash {'ok' if result['hash_ok'] else 'MISMATCH'}, "
               f"{'reproducible' if result['reproducible'] else 'DIFFERS from a recomputation'}")
    if not (result["hash_ok"] and result["reproducible"]):
        fail(f"{month} does not verify")


@report_cli.command("rules")
@click.option("--actor", default="cli")
@with_appcontext
def rules_command(actor):
    """Store processes/assessment.toml as a new rules version if it changed (also done by serve/demo)."""
    from engine.services import assessment

    r = run_service(assessment.deploy_rules, runtime(), actor)
    state = "deployed" if r["new"] else "unchanged"
    click.echo(f"assessment rules v{r['version']} (from {r['effective_from']}) {state}")


@report_cli.command("timelines")
@click.option("--batch", default=500, type=click.IntRange(min=1), help="Cases per transaction (default 500).")
@with_appcontext
def timelines_command(batch):
    """Write the statistics timeline of every case that has none (started before migration d_h11f)."""
    from engine.services import statistics

    result = run_service(statistics.backfill_timelines, runtime(), batch)
    click.echo(f"timelines written: {result['written']}")
