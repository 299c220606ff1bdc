"""`flask audit`: replay and verify case logs; migrate running cases to another version."""
from __future__ import annotations

import click
from flask.cli import AppGroup, with_appcontext

from cli import fail, run_service, runtime

audit_cli = AppGroup("audit", help="Replay and verify case logs; migrate running cases to another version.")


@audit_cli.command("replay")
@click.argument("case_no")
@click.option("--until", type=int, default=None, help="Stop after event N and show the state then.")
@with_appcontext
def audit_replay_command(case_no, until):
    """Rebuild a case from its definition version and events alone; exit 1 if it diverges."""
    from engine.services.audit import replay_case

    result = run_service(replay_case, runtime(), case_no, until=until)
    for s in result["steps"]:
        where = f" {s['element']}" + (f" [{s['lane']}]" if s["lane"] else "") if s["element"] else ""
        data = f" {s['payload']}" if s["payload"] else ""
        click.echo(f"{s['seq']:4} {s['at']} {s['actor']:20} {s['type']}{where}{data}")
    if "as_of" in result:
        as_of = result["as_of"]
        click.echo(f"as of event {as_of['seq']}: open " + (", ".join(
            f"{t['element']} ({t['assignee'] or 'unclaimed'})" for t in as_of["open_tasks"]) or "none")
            + "; waiting " + (", ".join(f"{t['element']} {t['due_at']}" for t in as_of["waiting_timers"]) or "none")
            + f"; deadlines fired {len(as_of['deadlines_fired'])}")
    click.echo(f"{result['case_no']}: {result['verdict']}")
    if not result["consistent"]:
        raise SystemExit(1)


@audit_cli.command("verify")
@click.argument("case_nos", nargs=-1)
@click.option("--all", "all_cases", is_flag=True, help="Verify every case.")
@with_appcontext
def audit_verify_command(case_nos, all_cases):
    """Check each case's hash chain, stored state and replay; exit 1 naming the case and event on any mismatch."""
    import time

    from engine.services.audit import verify_cases

    if not case_nos and not all_cases:
        fail("name one or more cases, or --all")
    started = time.perf_counter()
    result = run_service(verify_cases, runtime(), None if all_cases else list(case_nos))
    elapsed = time.perf_counter() - started
    for r in result["results"]:
        click.echo(f"{r['case_no']}: event {r['seq']}: {r['problem']}", err=True)
    click.echo(f"{result['checked']} case(s) verified in {elapsed:.2f}s, {result['failed']} failed")
    if result["failed"]:
        raise SystemExit(1)


@audit_cli.command("migrate")
@click.argument("case_nos", nargs=-1, required=True)
@click.option("--to-version", type=int, required=True, help="The version of the case's process to move to.")
@click.option("--dry-run", is_flag=True, help="Only replay each case on the new version and report.")
@click.option("--actor", default="cli", help="Who migrates (recorded in the case_migrated event).")
@with_appcontext
def audit_migrate_command(case_nos, to_version, dry_run, actor):
    """Move running cases to another version after replaying their history on it; exit 1 if any is refused."""
    from engine.services.audit import migrate_cases

    results = run_service(migrate_cases, runtime(), list(case_nos), to_version, dry_run, actor)
    for r in results:
        reason = f": {r['reason']}" if r["reason"] else ""
        click.echo(f"{r['case_no']} v{r['from']} -> v{r['to']}: {r['outcome']}{reason}")
    if any(r["outcome"] == "refused" for r in results):
        raise SystemExit(1)
