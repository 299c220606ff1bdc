"""`flask processes`: validate, deploy, list and diff BPMN process definitions."""
from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup, with_appcontext

from cli import fail, print_problems, runtime

processes_cli = AppGroup("processes", help="Validate and deploy BPMN process definitions.")


@processes_cli.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@with_appcontext
def validate_command(paths):
    """Check BPMN/DMN files (default: the processes directory): each file's verdict; exit 1 on any problem."""
    from engine.core.definitions import read_sources
    from engine.services.processes import validate_files

    rt = runtime()
    sources = read_sources(paths or [rt.processes_dir])
    if not sources:
        fail("no .bpmn or .dmn file found")
    verdict = validate_files(rt, sources)
    for entry in verdict["files"]:
        count = len(entry["problems"])
        click.echo(f"{entry['file']}: {f'{count} problem(s)' if count else 'OK'}")
        print_problems(entry["problems"])
    bad = sum(1 for entry in verdict["files"] if entry["problems"])
    if bad:
        fail(f"{bad} of {len(sources)} file(s) have problems")
    click.echo(f"{len(sources)} file(s) valid")


@processes_cli.command("deploy")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--actor", default="cli", help="Who deploys (recorded on each new version).")
@with_appcontext
def deploy_command(paths, actor):
    """Store a new version of every changed process (default: the processes directory)."""
    from engine.errors import DefinitionInvalid
    from engine.services.processes import deploy_paths

    try:
        results = deploy_paths(runtime(), list(paths), actor)
    except DefinitionInvalid as exc:
        print_problems(exc.problems)
        fail(exc.message)
    for r in results:
        click.echo(f"{r['process_id']} v{r['version']} {'deployed' if r['new'] else 'unchanged'} ({r['source']})")


@processes_cli.command("list")
@with_appcontext
def list_command():
    """List the deployed definitions and their versions."""
    from engine.services.processes import list_definitions

    for r in list_definitions(runtime()):
        calls = ", ".join(f"{pid} v{v}" for pid, v in r["calls"].items())
        click.echo(f"{r['process_id']} v{r['version']} {r['sha256'][:12]} {r['deployed_at']} by {r['deployed_by']}"
                   + (f"; calls {calls}" if calls else ""))


@processes_cli.command("diff")
@click.argument("process_id")
@click.argument("old", type=int)
@click.argument("new", type=int)
@with_appcontext
def diff_command(process_id, old, new):
    """Name the elements added, removed and changed between two versions of a process."""
    from engine.errors import DefinitionNotFound
    from engine.services.processes import diff_versions

    try:
        d = diff_versions(runtime(), process_id, old, new)
    except DefinitionNotFound as exc:
        fail(exc.message)
    _echo_changes(d, "")
    for c in d["calls"]:  # the called processes whose pinned version differs
        click.echo(f"calls {c['process_id']}: v{c['from']} -> v{c['to']}")
        _echo_changes(c, "  ")
    if not any(d[k] for k in ("added", "removed", "changed", "calls")):
        click.echo(f"{process_id} v{old} and v{new} have the same elements and call the same versions")


def _echo_changes(d: dict, indent: str) -> None:
    for sign, key in (("+", "added"), ("-", "removed")):
        for e in d.get(key, []):
            click.echo(f"{indent}{sign} {e['element']} ({e['type']}{', ' + e['name'] if e['name'] else ''})")
    for e in d.get("changed", []):
        click.echo(f"{indent}~ {e['element']} ({e['type']})")
        for c in e["changes"]:
            click.echo(f"{indent}    {c['field']}: {c['from']!r} -> {c['to']!r}")


@processes_cli.command("layout")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace the diagram a file already has.")
def layout_command(paths, force):
    """Add diagram information (BPMNDI, an automatic layout) to BPMN files that have none."""
    from engine.services.processes import layout_file

    from cli import run_service

    for path in paths:
        done = run_service(layout_file, path, force)
        click.echo(f"{path}: {'laid out' if done else 'has a diagram already (use --force to replace it)'}")
