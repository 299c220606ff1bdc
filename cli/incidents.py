"""`flask incidents`: list the incidents and retry one after a fix or a migration."""
from __future__ import annotations

import click
from flask.cli import AppGroup, with_appcontext

from cli import fail, run_service, runtime

incidents_cli = AppGroup("incidents", help="Asynchronous work that failed after its retries (timers, ...).")


def _line(i: dict) -> str:
    where = " ".join(x for x in (i["case_no"], i["element"]) if x)
    return (f"#{i['id']} {i['status']:8} {i['kind']:12} {where or '-'}  tries {i['tries']}  "
            f"first {i['first_seen']}  last {i['last_seen']}\n    {i['error_type'] or 'error'}: {i['error']}")


@incidents_cli.command("list")
@click.option("--status", type=click.Choice(["open", "resolved", "all"]), default="open", show_default=True)
@click.option("--case", "case_no", default=None, help="Only this case's incidents.")
@click.option("--kind", default=None, help="Only incidents of this kind (timer, no_unit, notification).")
@click.option("--limit", default=100, type=click.IntRange(1, 100), show_default=True)
@with_appcontext
def incidents_list_command(status, case_no, kind, limit):
    """Incidents, latest first."""
    from engine.services.incidents import list_incidents

    page = run_service(list_incidents, runtime(), None,
                       {"status": status, "case": case_no, "kind": kind, "per_page": limit})
    for incident in page["items"]:
        click.echo(_line(incident))
    click.echo(f"{page['total']} {'' if status == 'all' else status + ' '}incident(s)")


@incidents_cli.command("retry")
@click.argument("incident_id", type=int)
@click.option("--actor", default="cli", help="Who retries (recorded when the incident is resolved).")
@with_appcontext
def incidents_retry_command(incident_id, actor):
    """Re-attempt the failed work of an incident once now; exit 1 if it fails again."""
    from engine.services.incident_retry import retry_incident

    result = run_service(retry_incident, runtime(), None, incident_id, actor)
    incident = result["incident"]
    if result["outcome"] != "resolved":
        fail(f"incident {incident_id}: the retry failed again (tries {incident['tries']}): {result['error']}")
    click.echo(f"incident {incident_id}: resolved ({incident['resolution']})")
