"""Process services: validate and deploy definitions, list and compare versions, read a stored source.

Given a `user` (an `engine.rules.access.Caller`), validating and deploying need the
process designer role, and a deployment records that user as `deployed_by`.
"""
from __future__ import annotations

import logging
from pathlib import Path

from lxml import etree
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from engine.core import bpmn_diff
from engine.core.definitions import PROCESS_ID, problem, read_sources
from engine.errors import Conflict, DefinitionNotFound, InvalidInput
from engine.rules import access
from engine.store.models import ProcessDefinition

log = logging.getLogger(__name__)


def validate_sources(rt, sources: dict[str, bytes]) -> list[dict]:
    """Problems found in the given sources (empty when they would deploy); never raises for bad input."""
    try:
        _, problems = rt.definitions.parse_sources(sources, _call_context(rt))
    except Exception as exc:  # a verdict for any file, even one that trips a bug of ours or the parser's
        log.exception("validating %s failed", sorted(sources))
        return [problem(name, None, f"could not be checked: {type(exc).__name__}: {exc}") for name in sorted(sources)]
    return problems


def _call_context(rt) -> dict[str, bytes]:
    """What a validated file's call activities may name: the shipped processes, overridden by the deployed ones."""
    context = read_sources([rt.processes_dir]) if Path(rt.processes_dir).is_dir() else {}
    try:
        with rt.db.read() as session:
            context.update(rt.definitions.stored_sources(session))
    except SQLAlchemyError:  # no database yet (e.g. `flask processes validate` before `flask db upgrade`)
        log.info("no deployed processes to resolve call activities against; using %s", rt.processes_dir)
    return context


def validate_files(rt, sources: dict[str, bytes], *, user=None) -> dict:
    """The verdict on each file: {"valid", "files": [{"file", "problems"}]}."""
    if user is not None:
        access.require_designer(user)
    problems = validate_sources(rt, sources)
    files = {name: [] for name in sorted(sources)}
    for p in problems:
        files.setdefault(p.get("file") or "", []).append(p)
    return {"valid": not problems, "files": [{"file": name, "problems": ps} for name, ps in files.items()]}


def deploy_sources(rt, sources: dict[str, bytes], actor: str | None = None, *, user=None) -> list[dict]:
    """Store a new immutable version of each changed process; all or nothing (DefinitionInvalid)."""
    if user is not None:
        access.require_designer(user)
        actor = user.username
    try:
        with rt.db.write() as session:
            results = rt.definitions.deploy(session, sources, actor)
            return [dict(definition_view(row), new=new) for row, new in results]
    except IntegrityError as exc:
        # Another deploy of the same process took the version number first: nothing was stored.
        raise Conflict("another deployment of this process happened at the same moment; try again") from exc


def deploy_paths(rt, paths: list[Path] | None, actor: str) -> list[dict]:
    return deploy_sources(rt, read_sources(paths or [rt.processes_dir]), actor)


def list_definitions(rt) -> list[dict]:
    with rt.db.read() as session:
        rows = session.scalars(select(ProcessDefinition).order_by(ProcessDefinition.process_id,
                                                                  ProcessDefinition.version))
        return [definition_view(r) for r in rows]


def list_processes(rt) -> list[dict]:
    """The deployed processes, each with its versions (oldest first) and its latest version number."""
    out: dict[str, dict] = {}
    for row in list_definitions(rt):
        entry = out.setdefault(row["process_id"], {"process_id": row["process_id"], "versions": []})
        entry.update(name=row["name"], latest=row["version"])
        entry["versions"].append({k: v for k, v in row.items() if k != "process_id"})
    return list(out.values())


def list_versions(rt, process_id: str) -> list[dict]:
    """The versions of one process, oldest first, with who deployed each and when."""
    with rt.db.read() as session:
        rows = session.scalars(select(ProcessDefinition).where(ProcessDefinition.process_id == process_id)
                               .order_by(ProcessDefinition.version)).all() if _valid_id(process_id) else []
        if not rows:
            raise DefinitionNotFound(f"process {process_id!r} is not deployed")
        return [definition_view(r) for r in rows]


def definition_source(rt, process_id: str, version: int) -> str:
    with rt.db.read() as session:
        return _row(session, process_id, version).bpmn_xml


def diff_versions(rt, process_id: str, old: int, new: int) -> dict:
    """The elements added, removed and changed from version `old` to version `new`."""
    with rt.db.read() as session:
        old_xml, new_xml = _row(session, process_id, old).bpmn_xml, _row(session, process_id, new).bpmn_xml
        old_calls, new_calls = (_row(session, process_id, old).calls or {}), (_row(session, process_id, new).calls or {})
        calls = []
        for callee in sorted(set(old_calls) | set(new_calls)):
            a, b = old_calls.get(callee), new_calls.get(callee)
            if a == b:
                continue
            entry = {"process_id": callee, "from": a, "to": b}
            if a is not None and b is not None:
                entry.update(bpmn_diff.diff(_row(session, callee, a).bpmn_xml, _row(session, callee, b).bpmn_xml))
            calls.append(entry)
    return {"process_id": process_id, "from": old, "to": new, **bpmn_diff.diff(old_xml, new_xml), "calls": calls}


def _valid_id(process_id) -> bool:
    return isinstance(process_id, str) and bool(PROCESS_ID.match(process_id))


def _row(session, process_id: str, version: int) -> ProcessDefinition:
    row = None
    if _valid_id(process_id) and isinstance(version, int) and 0 < version < 2 ** 31:
        row = session.scalar(select(ProcessDefinition).where(ProcessDefinition.process_id == process_id,
                                                             ProcessDefinition.version == version))
    if row is None:
        raise DefinitionNotFound(f"process {process_id!r} has no version {version}")
    return row


def definition_view(row: ProcessDefinition) -> dict:
    return {"process_id": row.process_id, "version": row.version, "name": row.name, "sha256": row.sha256,
            "source": row.source_name, "deployed_at": row.deployed_at.isoformat(), "deployed_by": row.deployed_by,
            "calls": dict(row.calls or {})}


def deployed_forms(rt) -> dict[str, list]:
    """The form of every user task of every deployed version, keyed `process:version:element`."""
    with rt.db.read() as session:
        ids = session.scalars(select(ProcessDefinition.id).order_by(ProcessDefinition.id)).all()
        out = {}
        for definition_id in ids:
            loaded = rt.definitions.get(session, definition_id)
            for element, meta in loaded.tasks.items():
                out[f"{loaded.process_id}:{loaded.version}:{element}"] = list(meta.form)
        return out


def layout_file(path: Path, force: bool = False) -> bool:
    """Write diagram information (BPMNDI) into a BPMN file that has none; False when it had one (and not `force`)."""
    from engine.core.bpmn_layout import layout_xml

    try:
        laid_out = layout_xml(Path(path).read_bytes(), force=force)
    except etree.XMLSyntaxError as exc:
        raise InvalidInput(f"{path}: not well-formed XML: {exc}", errors={"file": [str(exc)]}) from exc
    if laid_out is None:
        return False
    Path(path).write_bytes(laid_out)
    return True
