"""Process services: validate and deploy definitions, list versions, read a stored source."""
from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select

from engine.definitions import read_sources
from engine.errors import DefinitionNotFound
from engine.models import ProcessDefinition

PROCESS_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$")


def validate_sources(rt, sources: dict[str, bytes]) -> list[dict]:
    """Problems found in the given sources (empty when they would deploy)."""
    _, problems = rt.definitions.parse_sources(sources)
    return problems


def deploy_sources(rt, sources: dict[str, bytes], actor: str) -> list[dict]:
    """Store a new immutable version of each changed process; all or nothing."""
    with rt.db.write() as session:
        results = rt.definitions.deploy(session, sources, actor)
        return [dict(definition_view(row), new=new) for row, new in results]


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


def definition_source(rt, process_id: str, version: int) -> str:
    if not isinstance(process_id, str) or not PROCESS_ID.match(process_id) or not 0 < version < 2 ** 31:
        raise DefinitionNotFound(f"process {process_id!r} has no version {version}")
    with rt.db.read() as session:
        row = session.scalar(select(ProcessDefinition).where(ProcessDefinition.process_id == process_id,
                                                             ProcessDefinition.version == version))
        if row is None:
            raise DefinitionNotFound(f"process {process_id!r} has no version {version}")
        return row.bpmn_xml


def definition_view(row: ProcessDefinition) -> dict:
    return {"process_id": row.process_id, "version": row.version, "name": row.name, "sha256": row.sha256,
            "source": row.source_name, "deployed_at": row.deployed_at.isoformat(), "deployed_by": row.deployed_by}
