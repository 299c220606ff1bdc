"""`flask org`: check and import the organisation (units and users) a city runs on."""
from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup, with_appcontext

from cli import fail, run_service, runtime

org_cli = AppGroup("org", help="The organisation: check it, import it from TOML.")


def _print_report(report: dict) -> None:
    for note in report["notes"]:
        click.echo(f"note: {note}")
    for gap in report["gaps"]:
        click.echo(f"gap: {gap['text']}", err=True)
    click.echo(report["summary"])


def _run_refusing_gaps(fn, *args, **kwargs):
    from engine.errors import OrganisationGaps

    def guarded():
        try:
            return fn(*args, **kwargs)
        except OrganisationGaps as exc:
            for gap in exc.gaps:
                click.echo(f"gap: {gap}", err=True)
            fail(f"{exc.message}; fix them (or pass --allow-gaps to load it anyway)")

    return run_service(guarded)


@org_cli.command("check")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@with_appcontext
def org_check_command(paths):
    """Prove every case can reach a unit with candidates; exit 1 naming each gap.

    Without PATHS: the organisation the database holds (organisation.toml while it holds
    none). With PATHS (TOML files with [[units]] and/or [[users]], or directories holding
    organisation.toml and demo_users.toml): the organisation they describe, against the
    process data tables of PROCESSES_DIR (users from the database when no file lists any).
    """
    from engine.services.org_load import check_files, check_loaded

    report = run_service(check_files, runtime(), paths) if paths else run_service(check_loaded, runtime())
    _print_report(report)
    if not report["ok"]:
        raise SystemExit(1)


@org_cli.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--allow-gaps", is_flag=True,
              help="Load the organisation even if the check finds gaps (each is logged as a warning).")
@with_appcontext
def org_import_command(paths, allow_gaps):
    """Make the database's units and users those of PATHS (idempotent; missing ones are deactivated)."""
    from engine.services.org_load import import_organisation

    result = _run_refusing_gaps(import_organisation, runtime(), paths, allow_gaps=allow_gaps)
    for section in ("units", "users"):
        c = result[section]
        click.echo(f"{section}: {c['created']} created, {c['updated']} updated, {c['deactivated']} deactivated, "
                   f"{c['unchanged']} unchanged")
    for gap in result["check"]["allowed_gaps"]:
        click.echo(f"WARNING gap allowed: {gap}", err=True)
    click.echo(result["check"]["summary"])
