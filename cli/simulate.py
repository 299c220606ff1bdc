"""`flask simulate`: a simulated period of disputes through the real engine and timer service (what-if)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from cli import fail, run_service


@click.command("simulate")
@click.option("--cases", "cases_total", type=click.IntRange(min=0), default=None,
              help="How many disputes arrive in the period (default: the profile's monthly rate).")
@click.option("--from", "first", required=True, type=click.DateTime(["%Y-%m-%d"]), help="First day, YYYY-MM-DD.")
@click.option("--to", "last", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Last day, inclusive.")
@click.option("--seed", type=int, default=1, help="Random seed: the same seed gives the same figures.")
@click.option("--profile", "profile_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Arrival rates and handler behaviour (default: processes/simulation.toml).")
@click.option("--db-url", default=None,
              help="Run against this database (default: a new SQLite file under the instance folder).")
@click.option("--json", "json_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the whole result (statistics, monthly assessments, forecast) to this file.")
@with_appcontext
def simulate_command(cases_total, first, last, seed, profile_path, db_url, json_file):
    """Drive synthetic disputes through the engine on a virtual clock; print the year's figures."""
    from app import create_app
    from cli.serve import _prepare
    from engine.services import seed as demo_seed
    from engine.services.simulation import count_cases, simulate
    from timers import TimerService

    if db_url is None:
        path = Path(current_app.instance_path) / f"simulation-{seed}-{time.strftime('%Y%m%d%H%M%S')}.db"
        db_url = f"sqlite:///{path}"
    app = create_app({"SQLALCHEMY_DATABASE_URI": db_url, "PROCESSES_DIR": current_app.config["PROCESSES_DIR"]})
    with app.app_context():
        rt = app.extensions["dispute_runtime"]
        _prepare()
        if run_service(count_cases, rt):
            fail(f"{db_url} already holds cases: simulate into an empty database")
        run_service(demo_seed.seed_demo, rt)
        started = time.perf_counter()
        timers = TimerService(rt, "simulation")
        result = run_service(simulate, rt, first.date(), last.date(), seed, timers.run_until_idle, cases_total,
                             profile_path)
        elapsed = time.perf_counter() - started
    total = result["statistics"]["total"]
    click.echo(f"simulated {result['from']} .. {result['to']} (seed {seed}) in {elapsed:.0f} s: "
               f"{result['arrivals']} disputes, {result['activity'].get('steps', 0)} steps done by the synthetic "
               f"handlers, {result['activity'].get('timer_rounds', 0)} timer rounds; database {db_url}")
    click.echo(f"accepted {total['accepted']}, completed {total['completed']} ({total['completion_rate']}), "
               f"by the community {total['resolved_by_level']['community']}, satisfaction "
               f"{total['satisfaction_rate']}, within the month {total['resolved_within_month_rate']}, red lights "
               f"{total['red_lights']}, supervised {total['supervised']}")
    for a in result["assessments"]:
        s = a["statistics"]
        worst = min(a["units"], key=lambda u: u["score"]) if a["units"] else None
        click.echo(f"  {a['month']}: accepted {s['accepted']:5}, completed {s['completed']:5}, red {s['red_lights']:4}"
                   + (f"; lowest score {worst['unit']} {worst['score']}" if worst else ""))
    click.echo("forecast for the next month (units with red lights or backlog):")
    for f in result["forecast"]:
        if f["expected_red_lights"] or f["expected_backlog"]:
            click.echo(f"  {f['unit']:14} red lights ~{f['expected_red_lights']}, backlog ~{f['expected_backlog']}")
    if json_file is not None:
        json_file.write_text(json.dumps({**result, "seconds": round(elapsed, 1)}, ensure_ascii=False, indent=1),
                             encoding="utf-8")
        click.echo(f"wrote {json_file}", err=True)
