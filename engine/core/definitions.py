"""Process definitions: parsing, checking, immutable versions, and a spec cache.

Every BPMN file under `processes/` is parsed with SpiffWorkflow's Spiff parser
and its XSD validator, then checked against this application's rules (every
expression passes the sandbox, every service task names a registered handler,
every user task sits in a lane that maps to a role and declares a valid form).
A definition version is stored once, keyed by process id and the sha256 of
its source, numbered 1, 2, 3 ... per process id, and never changed. Cases are
pinned to the version they started on. Parsed specs are cached per version:
they are immutable, so the cache never needs invalidating.
"""
from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree
from SpiffWorkflow.spiff.parser import VALIDATOR, SpiffBpmnParser
from sqlalchemy import func, select

from engine import clock
from engine.core.lint import lint_bpmn
from engine.core.sandbox import check_source
from engine.core.sandbox_constants import constant_refusals
from engine.core.serializer import SERIALIZER_VERSION, spec_from_json, spec_to_json
from engine.errors import DefinitionInvalid, DefinitionNotFound
from engine.rules.forms import FormField, parse_form
from engine.rules.status import CaseStatus
from engine.store.models import ProcessDefinition

NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core",
    "dmn": "https://www.omg.org/spec/DMN/20191111/MODEL/",
}
MAX_FILE_BYTES = 2 * 1024 * 1024
PROCESS_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$")
MAX_NAME = 200
STEP_LIMIT_EXTRA = ("handling",)

# Where expressions hide in a BPMN file: (xpath, mode).
EXPRESSION_PATHS = (
    ("//bpmn:conditionExpression", "eval"),
    ("//bpmn:scriptTask/bpmn:script", "exec"),
    ("//bpmn:timeDate", "eval"),
    ("//bpmn:timeDuration", "eval"),
    ("//bpmn:timeCycle", "eval"),
    ("//bpmn:loopCardinality", "eval"),
    ("//bpmn:completionCondition", "eval"),
    ("//spiffworkflow:preScript", "exec"),
    ("//spiffworkflow:postScript", "exec"),
)


def safe_xml_parser() -> etree.XMLParser:
    """No entities, no DTDs, no network: BPMN files are untrusted input."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                           remove_comments=False)


def problem(file: str, element: str | None, reason: str, line: int | None = None, fix: str | None = None) -> dict:
    out = {"file": file, "element": element, "line": line, "reason": reason}
    if fix:
        out["fix"] = fix
    return out


@dataclass(frozen=True)
class TaskMeta:
    """What the application needs to know of one user task of a definition."""

    bpmn_id: str
    name: str
    lane: str | None
    status: str | None
    time_limit: str | None
    form: tuple[FormField, ...]
    properties: dict = field(default_factory=dict)

    @property
    def assignee_from(self) -> str | None:
        """The data variable naming the user this task is assigned to when it opens (the named handler)."""
        return self.properties.get("assignee_from")

    @property
    def shows(self) -> tuple[str, ...]:
        """Case data this task shows its holder beside the form (e.g. the co-handlers' results)."""
        return tuple(v.strip() for v in (self.properties.get("show") or "").split(",") if v.strip())


@dataclass
class LoadedDefinition:
    id: int
    process_id: str
    version: int
    name: str
    spec: object
    subprocess_specs: dict
    tasks: dict[str, TaskMeta]


@dataclass
class ParsedProcess:
    process_id: str
    name: str
    source_name: str
    xml: str
    sha256: str
    spec: object
    subprocess_specs: dict


def _owner(node) -> tuple[str | None, int | None]:
    while node is not None:
        if node.get("id"):
            return node.get("id"), node.sourceline
        node = node.getparent()
    return None, None


def task_metas(spec, subprocess_specs: dict) -> dict[str, TaskMeta]:
    metas = {}
    for s in [spec, *subprocess_specs.values()]:
        for ts in s.task_specs.values():
            if not getattr(ts, "manual", False):
                continue
            props = dict((getattr(ts, "extensions", None) or {}).get("properties", {}))
            metas[ts.bpmn_id] = TaskMeta(
                bpmn_id=ts.bpmn_id,
                name=ts.bpmn_name or ts.bpmn_id,
                lane=ts.lane,
                status=props.get("status"),
                time_limit=props.get("time_limit"),
                form=tuple(parse_form(props)),
                properties=props,
            )
    return metas


class Definitions:
    """Parses, checks, stores and caches process definitions."""

    def __init__(self, tables, handler_names, function_names, functions: dict | None = None):
        self.tables = tables
        self.handler_names = set(handler_names)
        self.function_names = set(function_names)
        self.functions = dict(functions or {})  # to evaluate timer expressions when checking
        self._cache: dict[int, LoadedDefinition] = {}
        self._lock = threading.Lock()

    # -- checking ---------------------------------------------------------------

    def refusals(self, text: str, mode: str) -> list[str]:
        """Why the sandbox refuses `text`: what it may not do, else the limits its literal-only parts exceed."""
        return check_source(text, mode, self.function_names) or constant_refusals(text, mode)

    def check_xml(self, root, source_name: str) -> list[dict]:
        """The application's own rules, read off the XML so every problem has a line."""
        problems = []
        for path, mode in EXPRESSION_PATHS:
            for node in root.xpath(path, namespaces=NS):
                text = (node.text or "").strip()
                if not text:
                    continue
                element, line = _owner(node)
                for reason in self.refusals(text, mode):
                    problems.append(problem(source_name, element, f"expression refused: {reason}",
                                            node.sourceline or line,
                                            "use only task data, plain operators and the approved functions"))
        for node in root.xpath("//spiffworkflow:parameter", namespaces=NS):
            value = node.get("value")
            if value:
                element, line = _owner(node.getparent())
                for reason in self.refusals(value, "eval"):
                    problems.append(problem(source_name, element, f"parameter {node.get('id')!r} refused: {reason}",
                                            node.sourceline))
        for node in root.xpath("//bpmn:serviceTask", namespaces=NS):
            ops = node.xpath("./bpmn:extensionElements/spiffworkflow:serviceTaskOperator", namespaces=NS)
            if not ops:
                problems.append(problem(source_name, node.get("id"), "service task names no operation",
                                        node.sourceline,
                                        "add <spiffworkflow:serviceTaskOperator id=\"HANDLER\"/> with a registered handler"))
            for op in ops:
                if op.get("id") not in self.handler_names:
                    problems.append(problem(
                        source_name, node.get("id"), f"unknown service handler {op.get('id')!r}", op.sourceline,
                        f"use one of: {', '.join(sorted(self.handler_names))}"))
        for node in root.xpath("//dmn:inputExpression/dmn:text | //dmn:outputEntry/dmn:text", namespaces=NS):
            text = (node.text or "").strip()
            if text and text != "-":
                element, _ = _owner(node)
                for reason in self.refusals(text, "eval"):
                    problems.append(problem(source_name, element, f"decision cell refused: {reason}", node.sourceline))
        return problems

    def check_spec(self, spec, subs, source_name: str, lines: dict) -> list[dict]:
        problems = []
        statuses = {s.value for s in CaseStatus}
        steps = (set(self.tables.time_limits["steps"]) | set(self.tables.time_limits.get("escalation", {}))
                 | set(STEP_LIMIT_EXTRA))
        for s in [spec, *subs.values()]:
            for ts in s.task_specs.values():
                if not getattr(ts, "manual", False):
                    continue
                line = lines.get(ts.bpmn_id)
                props = (getattr(ts, "extensions", None) or {}).get("properties", {})
                if ts.lane is None:
                    problems.append(problem(source_name, ts.bpmn_id, "user task is not in a lane", line,
                                            "put it in a lane named in processes/lanes.toml"))
                elif ts.lane not in self.tables.lanes:
                    problems.append(problem(source_name, ts.bpmn_id, f"lane {ts.lane!r} maps to no role", line,
                                            f"name the lane one of: {', '.join(self.tables.lanes)}"))
                if props.get("status") not in statuses:
                    problems.append(problem(source_name, ts.bpmn_id, f"status property {props.get('status')!r} is not a case status",
                                            line, f"use one of: {', '.join(sorted(statuses))}"))
                if props.get("time_limit") is not None and props["time_limit"] not in steps:
                    problems.append(problem(source_name, ts.bpmn_id, f"unknown time_limit {props['time_limit']!r}",
                                            line, f"use one of: {', '.join(sorted(steps))}"))
                try:
                    parse_form(props)
                except ValueError as exc:
                    problems.append(problem(source_name, ts.bpmn_id, f"form: {exc}", line))
        return problems

    # -- parsing ----------------------------------------------------------------

    def parse_sources(self, sources: dict[str, bytes],
                      context: dict[str, bytes] | None = None) -> tuple[list[ParsedProcess], list[dict]]:
        """Parse and check BPMN/DMN sources (name → bytes) together; (processes, problems).

        `context`: other files (e.g. the deployed versions of the shared sub-procedures) that
        call activities of `sources` may name; they are parsed to resolve those calls but are
        neither checked nor returned.
        """
        problems: list[dict] = []
        parser = SpiffBpmnParser(validator=VALIDATOR)
        roots, lines, texts = {}, {}, {}
        given_ids = set()
        for data in sources.values():
            try:
                given_ids |= set(etree.fromstring(data, safe_xml_parser()).xpath("//bpmn:process/@id", namespaces=NS))
            except Exception:  # noqa: BLE001 - the file's own problems are reported below
                continue
        for name, data in sorted((context or {}).items()):
            if name in sources or not name.endswith(".bpmn"):
                continue
            try:
                root = etree.fromstring(data, safe_xml_parser())
                if set(root.xpath("//bpmn:process/@id", namespaces=NS)) & given_ids:
                    continue  # the upload brings its own version of these processes
                parser.add_bpmn_xml(root, filename=name)
                texts[name] = data
            except Exception:  # noqa: BLE001 - a stored file that no longer parses is simply not context
                continue
        for name, data in sorted(sources.items()):
            root = _read_xml(name, data, problems)
            if root is None:
                continue
            if root.xpath("//dmn:decision", namespaces=NS) or name.endswith(".dmn"):
                if not name.endswith(".dmn"):
                    problems.append(problem(name, None, "a DMN decision file named like a BPMN file",
                                            fix="name decision tables *.dmn"))
                    continue
                problems.extend(self.check_xml(root, name))
                try:
                    parser.add_dmn_xml(root, filename=name)
                except Exception as exc:  # noqa: BLE001 - any file gets a verdict, never a traceback
                    problems.append(_spiff_problem(name, exc))
                continue
            roots[name] = root
            texts[name] = data
            for node in root.iter():
                if isinstance(node.tag, str) and node.get("id"):
                    lines.setdefault(node.get("id"), node.sourceline)
            problems.extend(self.check_xml(root, name))
            try:
                problems.extend(lint_bpmn(root, name, self.tables, self.functions))
            except Exception as exc:  # noqa: BLE001 - a lint bug must not hide the file's other problems
                problems.append(problem(name, None, f"could not check the diagram: {type(exc).__name__}: {exc}"))
            try:
                parser.add_bpmn_xml(root, filename=name)
            except Exception as exc:  # noqa: BLE001
                problems.append(_spiff_problem(name, exc))
        parsed = []
        for pid in parser.get_process_ids():
            pparser = parser.get_process_parser(pid)
            source_name = pparser.filename
            if source_name not in roots:
                continue
            unknown = _unknown_calls(roots[source_name], pid, set(parser.get_process_ids()))
            if unknown:
                problems.extend(problem(source_name, element, f"call activity calls process {called!r}, which is "
                                        "neither in this upload nor deployed", lines.get(element),
                                        "deploy the called process first, or upload it together with this file")
                                for element, called in unknown)
                continue
            try:
                spec = parser.get_spec(pid)
                subs = parser.get_subprocess_specs(pid)
            except Exception as exc:  # noqa: BLE001 - foreign modellers' files break the parser in many ways
                problems.append(_spiff_problem(source_name, exc))
                continue
            problems.extend(self.check_spec(spec, subs, source_name, lines))
            if not PROCESS_ID.match(pid) or len(spec.description or "") > MAX_NAME:
                problems.append(problem(source_name, pid, "process id or name is too long or has odd characters",
                                        lines.get(pid), f"use an id of letters, digits, '_', '.', '-' (at most 100) "
                                                        f"and a name of at most {MAX_NAME} characters"))
                continue
            digest = hashlib.sha256(texts[source_name])
            for sub_id in sorted(subs):
                sub_parser = parser.get_process_parser(sub_id)
                if sub_parser is not None and sub_parser.filename in texts and sub_parser.filename != source_name:
                    digest.update(texts[sub_parser.filename])
            parsed.append(ParsedProcess(pid, spec.description or pid, source_name,
                                        texts[source_name].decode("utf-8"), digest.hexdigest(), spec, subs))
        if not parsed and not problems and roots:
            problems.append(problem(next(iter(roots)), None, "no executable process found",
                                    fix='mark the process isExecutable="true"'))
        return parsed, problems

    # -- storing ----------------------------------------------------------------

    def stored_sources(self, session) -> dict[str, bytes]:
        """The source file of the latest version of every deployed process, by file name."""
        latest = (select(ProcessDefinition.process_id, func.max(ProcessDefinition.version).label("v"))
                  .group_by(ProcessDefinition.process_id).subquery())
        rows = session.execute(select(ProcessDefinition.source_name, ProcessDefinition.bpmn_xml).join(
            latest, (ProcessDefinition.process_id == latest.c.process_id) & (ProcessDefinition.version == latest.c.v)))
        return {name: xml.encode("utf-8") for name, xml in rows}

    def deploy(self, session, sources: dict[str, bytes], actor: str) -> list[tuple[ProcessDefinition, bool]]:
        """Store a new version of every process whose source changed; refuse all on any problem.

        Call activities resolve against the uploaded files first, then the deployed ones. A
        process whose new version a deployed caller calls makes a new version of that caller
        too (its spec embeds the callee's), so new cases of the caller take the new callee;
        running cases stay pinned to the versions they started on.
        """
        results, done = [], set()
        pending = dict(sources)
        while pending:
            stored = self.stored_sources(session)
            parsed, problems = self.parse_sources(pending, stored)
            if problems:
                raise DefinitionInvalid(f"{len(problems)} problem(s) in the process definitions", problems)
            changed = set()
            for row, new in self._store(session, parsed, actor):
                results.append((row, new))
                if new:
                    changed.add(row.process_id)
            done |= set(pending)
            pending = {}
            if changed:
                for name, xml in self.stored_sources(session).items():
                    if name not in done and called_processes(xml) & changed:
                        pending[name] = xml
        return results

    def _store(self, session, parsed, actor: str) -> list[tuple[ProcessDefinition, bool]]:
        results = []
        for p in parsed:
            existing = session.scalar(select(ProcessDefinition).where(
                ProcessDefinition.process_id == p.process_id, ProcessDefinition.sha256 == p.sha256))
            if existing is not None:
                results.append((existing, False))
                continue
            last = session.scalar(select(func.max(ProcessDefinition.version))
                                  .where(ProcessDefinition.process_id == p.process_id)) or 0
            row = ProcessDefinition(
                process_id=p.process_id, version=last + 1, sha256=p.sha256, name=p.name,
                source_name=p.source_name, bpmn_xml=p.xml, spec_json=spec_to_json(p.spec, p.subprocess_specs),
                serializer_version=SERIALIZER_VERSION, deployed_at=clock.now(), deployed_by=actor,
            )
            session.add(row)
            session.flush()
            results.append((row, True))
        # The callees were stored above (uploaded together) or are the deployed latest (context).
        for (row, new), p in zip(results, parsed):
            if new and p.subprocess_specs:
                # Embedded sub-processes are among the sub-specs too: only deployed processes are called.
                versions = {sub: session.scalar(select(func.max(ProcessDefinition.version))
                                                .where(ProcessDefinition.process_id == sub))
                            for sub in sorted(p.subprocess_specs)}
                row.calls = {sub: v for sub, v in versions.items() if v is not None}
        return results

    def latest(self, session, process_id: str) -> LoadedDefinition:
        # The id only: the version's BPMN source and spec JSON are read once, when it is not cached yet.
        definition_id = session.scalar(select(ProcessDefinition.id).where(ProcessDefinition.process_id == process_id)
                                       .order_by(ProcessDefinition.version.desc()).limit(1))
        if definition_id is None:
            raise DefinitionNotFound(f"process {process_id!r} is not deployed")
        return self.get(session, definition_id)

    def get(self, session, definition_id: int) -> LoadedDefinition:
        cached = self._cache.get(definition_id)
        if cached is not None:
            return cached
        row = session.get(ProcessDefinition, definition_id)
        if row is None:
            raise DefinitionNotFound(f"definition {definition_id} does not exist")
        return self._loaded(row)

    def _loaded(self, row: ProcessDefinition) -> LoadedDefinition:
        cached = self._cache.get(row.id)
        if cached is not None:
            return cached
        spec, subs = spec_from_json(row.spec_json)
        loaded = LoadedDefinition(row.id, row.process_id, row.version, row.name, spec, subs, task_metas(spec, subs))
        with self._lock:
            return self._cache.setdefault(row.id, loaded)


def _read_xml(name: str, data: bytes, problems: list[dict]):
    """The parsed root of one source, or None with the reason appended to `problems`."""
    if not isinstance(data, bytes) or not data.strip():
        problems.append(problem(name, None, "the file is empty", fix="upload a BPMN 2.0 XML file"))
        return None
    if len(data) > MAX_FILE_BYTES:
        problems.append(problem(name, None, f"file is larger than {MAX_FILE_BYTES} bytes",
                                fix="split the diagram or remove embedded images"))
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(problem(name, None, f"not UTF-8 text (byte {exc.start})", fix="save the file as UTF-8"))
        return None
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:  # refused before parsing: nothing is expanded or fetched
        problems.append(problem(name, None, "DOCTYPE declarations (entities, external DTDs) are refused", 1,
                                "remove the <!DOCTYPE ...> declaration"))
        return None
    try:
        root = etree.fromstring(data, parser=safe_xml_parser())
    except (etree.XMLSyntaxError, ValueError) as exc:
        problems.append(problem(name, None, f"not well-formed XML: {exc}", getattr(exc, "lineno", None),
                                "export the diagram again as BPMN 2.0 XML"))
        return None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        problems.append(problem(name, None, "DOCTYPE declarations (entities, external DTDs) are refused", 1,
                                "remove the <!DOCTYPE ...> declaration"))
        return None
    qname = etree.QName(root)
    if qname.localname != "definitions" or not (qname.namespace == NS["bpmn"] or "DMN" in (qname.namespace or "")):
        problems.append(problem(name, None, f"not a BPMN 2.0 or DMN file (root element {root.tag!r})",
                                root.sourceline, "export the diagram as BPMN 2.0 XML"))
        return None
    return root


def _unknown_calls(root, process_id: str, known: set[str]) -> list[tuple[str, str]]:
    """(call activity id, called process id) of each call activity of `process_id` naming no known process."""
    out = []
    for process in root.xpath("//bpmn:process[@id=$pid]", pid=process_id, namespaces=NS):
        for node in process.xpath(".//bpmn:callActivity", namespaces=NS):
            if node.get("calledElement") not in known:
                out.append((node.get("id"), node.get("calledElement")))
    return out


def called_processes(xml: str | bytes) -> set[str]:
    """The process ids a BPMN source's call activities name (its direct callees)."""
    root = etree.fromstring(xml.encode("utf-8") if isinstance(xml, str) else xml, safe_xml_parser())
    return {n.get("calledElement") for n in root.xpath("//bpmn:callActivity", namespaces=NS) if n.get("calledElement")}


def _spiff_problem(name: str, exc: Exception) -> dict:
    element = getattr(exc, "id", None) or getattr(exc, "task_spec_id", None) or None
    line = getattr(exc, "line_number", None) or None
    notes = "; ".join(getattr(exc, "__notes__", []) or [])
    reason = str(exc) + (f" ({notes})" if notes else "")
    return problem(getattr(exc, "file_name", None) or name, element, reason, line if isinstance(line, int) else None)


def read_sources(paths) -> dict[str, bytes]:
    """File name → bytes for the given BPMN/DMN files or directories."""
    out = {}
    for path in paths:
        path = Path(path)
        files = sorted([*path.glob("*.bpmn"), *path.glob("*.dmn")]) if path.is_dir() else [path]
        for f in files:
            out[f.name] = f.read_bytes()
    return out
