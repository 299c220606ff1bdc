"""Designers' rules that parsing alone does not check: deadlines, timers, gateways, rework loops.

`lint_bpmn` reads one parsed BPMN tree and answers problems (file, element,
line, reason, fix) for:

* a user task without a deadline: a boundary timer event whose
  `spiffworkflow:property timer_kind` is `due`;
* a timer expression that does not evaluate, in the sandbox with the
  runtime's functions, over sample task data (the data a case starts with,
  once per handling time-limit class, plus a value for every form field), to
  an ISO 8601 instant with an offset, a duration or a cycle;
* an exclusive gateway with several outgoing flows where a flow other than
  the default has no condition, where two flows carry the same condition, or
  where two conditions hold together for some combination of the enum form
  fields they read (the rest of the data at its sample values);
* a rework loop without a cap: a cycle of the sequence-flow graph (boundary
  events count as leaving their task) through a user task that passes no
  exclusive gateway whose conditions compare a counter (`rework_count`,
  `return_count`, `ladder_index`, anything named `*_count`, `*_index` ...)
  with a limit.

The gateway and loop rules are approximations, read off the expressions'
syntax and a finite sample of the data; they catch the usual modelling
mistakes, not every possible one.
"""
from __future__ import annotations

import ast
import itertools
import re
from datetime import datetime

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from engine.rules.case_data import initial_data
from engine.core.sandbox import SandboxEnvironment, check_source
from engine.rules.forms import FIELD_PREFIX, parse_field

NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core",
}
# What a case's workflow starts with (mirrors the initial data of engine.services.cases.start_case).
INITIAL_DATA = initial_data("urban_management", "walk_in", "C", None,
                            {"max_reworks": 3, "max_returns": 3, "max_transfers": 2})
# What the shared sub-procedures and separate procedures add to that (processes/mediation_docking.bpmn:
# the body handed to and the clock it runs on, set by its handlers before any timer waits).
PROCEDURE_DATA = {"mediation_body": "M", "mediation_kind": "people_mediation",
                  "mediation_due": "2025-03-31T23:59:59+08:00", "session_count": 0, "max_mediation_sessions": 8,
                  "round_due": "2025-03-31T17:30:00+08:00", "screening_until": "2025-12-31T17:30:00+08:00"}
SAMPLE_BY_TYPE = {"string": "x", "text": "x", "int": 1, "bool": True, "date": "2025-01-01", "list": ["X"]}
MAX_GRID = 512
COUNTER = re.compile(r"(^|_)(count|counter|index|attempts?|rounds?|tries|loops?|times|level)$")
LIMIT_OPS = (ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq)
FIX_DEADLINE = ('attach a boundary timer event with <spiffworkflow:property name="timer_kind" value="due"/> '
                "and <bpmn:timeDate>due_at('STEP')</bpmn:timeDate>")
FIX_LOOP = ("count the rounds in a script task (rework_count = rework_count + 1) and leave the loop at an "
            "exclusive gateway whose condition compares the counter with a limit (rework_count <= max_reworks)")


def _problem(file, element, reason, line=None, fix=None) -> dict:
    out = {"file": file, "element": element, "line": line, "reason": reason}
    if fix:
        out["fix"] = fix
    return out


def _properties(node) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in
            node.xpath("./bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property", namespaces=NS)}


def _enum_choices(root) -> tuple[dict, dict]:
    """(sample value per form field, enum choices per field name) over all user tasks."""
    sample, choices = {}, {}
    for task in root.xpath("//bpmn:userTask", namespaces=NS):
        for name, value in _properties(task).items():
            if not name or not name.startswith(FIELD_PREFIX) or value is None:
                continue
            try:
                f = parse_field(name[len(FIELD_PREFIX):], value)
            except ValueError:
                continue  # reported by the form check
            if f.type == "enum":
                choices.setdefault(f.name, [])
                choices[f.name] += [c for c in f.choices if c not in choices[f.name]]
                sample.setdefault(f.name, f.choices[0])
            else:
                sample.setdefault(f.name, SAMPLE_BY_TYPE[f.type])
    return sample, choices


def samples(root, tables) -> tuple[list[dict], dict]:
    """Sample task data (one per handling time-limit class) and the enum choices of the form fields."""
    fields, choices = _enum_choices(root)
    classes = sorted(tables.time_limits.get("handling", {})) or [None]
    limits = tables.time_limits.get("rework", {})
    base = {**INITIAL_DATA, **PROCEDURE_DATA, **{k: v for k, v in limits.items() if k in INITIAL_DATA}}
    return [{**base, **fields, "time_limit_class": c} for c in classes], choices


def lint_bpmn(root, source_name: str, tables, functions: dict) -> list[dict]:
    env = SandboxEnvironment(functions)
    data, choices = samples(root, tables)
    flows = root.xpath("//bpmn:sequenceFlow", namespaces=NS)
    return [*_deadlines(root, source_name), *_timers(root, source_name, env, data),
            *_gateways(root, source_name, flows, env, data[0], choices),
            *_loops(root, source_name, flows)]


# -- deadlines and timers -------------------------------------------------------------


def _deadlines(root, file) -> list[dict]:
    due = set()
    for event in root.xpath("//bpmn:boundaryEvent[bpmn:timerEventDefinition]", namespaces=NS):
        if _properties(event).get("timer_kind") == "due":
            due.add(event.get("attachedToRef"))
    return [_problem(file, t.get("id"), "user task has no deadline timer", t.sourceline, FIX_DEADLINE)
            for t in root.xpath("//bpmn:userTask", namespaces=NS) if t.get("id") not in due]


def _check_timer_value(kind: str, value) -> str | None:
    if not isinstance(value, str):
        return f"evaluates to {type(value).__name__}, not an ISO 8601 string"
    try:
        if kind == "timeDate":
            TimerEventDefinition.get_datetime(value)
            if datetime.fromisoformat(value).tzinfo is None:
                return f"{value!r} has no UTC offset (it would be read in server-local time)"
        elif kind == "timeDuration":
            TimerEventDefinition.parse_iso_duration(value)
        else:
            TimerEventDefinition.parse_iso_recurring_interval(value)
    except Exception as exc:  # noqa: BLE001 - SpiffWorkflow raises bare Exception for bad values
        return f"{value!r} is not a valid ISO 8601 {kind[4:].lower()}: {exc}"
    return None


def _timers(root, file, env, data: list[dict]) -> list[dict]:
    problems = []
    for kind in ("timeDate", "timeDuration", "timeCycle"):
        for node in root.xpath(f"//bpmn:{kind}", namespaces=NS):
            text = (node.text or "").strip()
            owner = node.getparent().getparent()
            element = owner.get("id") if owner is not None else None
            if not text:
                problems.append(_problem(file, element, f"empty {kind} expression", node.sourceline,
                                         "give the timer an expression, e.g. due_at('STEP') or \"P1D\""))
                continue
            if check_source(text, "eval", env.functions):
                continue  # refused by the sandbox check already
            for sample in data:
                try:
                    reason = _check_timer_value(kind, env.evaluate(text, sample))
                except Exception as exc:  # noqa: BLE001 - any error of a designer's expression is a verdict
                    reason = f"does not evaluate: {type(exc).__name__}: {exc}"
                if reason:
                    problems.append(_problem(
                        file, element, f"timer expression {text!r} {reason}", node.sourceline,
                        "return an ISO 8601 string with an offset (due_at('STEP'), add_working_days(N)) "
                        "or a quoted duration such as \"P1D\""))
                    break
    return problems


# -- gateways -------------------------------------------------------------------------


def _condition(flow) -> str | None:
    nodes = flow.xpath("./bpmn:conditionExpression", namespaces=NS)
    text = (nodes[0].text or "").strip() if nodes else ""
    return text or None


def _names(source: str) -> set[str]:
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def _normalised(source: str) -> str:
    try:
        return ast.dump(ast.parse(source, mode="eval"))
    except SyntaxError:
        return source


def _gateways(root, file, flows, env, sample: dict, choices: dict) -> list[dict]:
    problems = []
    outgoing: dict[str, list] = {}
    for f in flows:
        outgoing.setdefault(f.get("sourceRef"), []).append(f)
    for gw in root.xpath("//bpmn:exclusiveGateway", namespaces=NS):
        gid, out, default = gw.get("id"), outgoing.get(gw.get("id"), []), gw.get("default")
        if len(out) < 2:
            continue
        conditions = {}
        for f in out:
            if f.get("id") == default:
                continue
            text = _condition(f)
            if text is None:
                reason = (f"flow {f.get('id')} has no condition (only the default flow may go without one)"
                          if default else f"no default flow and flow {f.get('id')} has no condition")
                problems.append(_problem(file, gid, reason, gw.sourceline,
                                         "give every flow but one a condition and mark that one the default"))
            else:
                conditions[f.get("id")] = text
        problems += _overlaps(file, gw, conditions, env, sample, choices)
    return problems


def _overlaps(file, gw, conditions: dict, env, sample: dict, choices: dict) -> list[dict]:
    fix = "make the conditions mutually exclusive: when several hold, the flow drawn highest wins"
    seen: dict[str, str] = {}
    for fid, text in conditions.items():
        key = _normalised(text)
        if key in seen:
            return [_problem(file, gw.get("id"), f"flows {seen[key]} and {fid} have the same condition {text!r}",
                             gw.sourceline, fix)]
        seen[key] = fid
    if any(check_source(t, "eval", env.functions) for t in conditions.values()):
        return []
    read = sorted(set().union(*map(_names, conditions.values())) & set(choices)) if conditions else []
    grid = list(itertools.islice(itertools.product(*(choices[n] for n in read)), MAX_GRID))
    for values in grid:
        data = {**sample, **dict(zip(read, values))}
        try:
            true = [fid for fid, text in conditions.items() if env.evaluate(text, data)]
        except Exception:  # noqa: BLE001 - no verdict on exclusivity then
            return []  # the conditions read data the sample lacks: no verdict on exclusivity
        if len(true) > 1:
            when = ", ".join(f"{n}={v!r}" for n, v in zip(read, values)) or "the sample data"
            return [_problem(file, gw.get("id"), f"flows {' and '.join(true)} are all taken when {when}",
                             gw.sourceline, fix)]
    return []


# -- rework loops ---------------------------------------------------------------------


def _compares_counter(source: str) -> bool:
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError:
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(isinstance(op, LIMIT_OPS) for op in node.ops):
            operands = [node.left, *node.comparators]
            if any(isinstance(o, ast.Name) and COUNTER.search(o.id) for o in operands):
                return True
    return False


def _loops(root, file, flows) -> list[dict]:
    edges: dict[str, set[str]] = {}
    for f in flows:
        edges.setdefault(f.get("sourceRef"), set()).add(f.get("targetRef"))
    for event in root.xpath("//bpmn:boundaryEvent", namespaces=NS):
        edges.setdefault(event.get("attachedToRef"), set()).add(event.get("id"))
    caps = {f.get("sourceRef") for f in flows if _condition(f) and _compares_counter(_condition(f))}
    user_tasks = {t.get("id"): t for t in root.xpath("//bpmn:userTask", namespaces=NS)}
    graph = {n: {m for m in targets if m not in caps} for n, targets in edges.items() if n not in caps}
    problems = []
    for component in _cycles(graph):
        tasks = sorted((t for t in component if t in user_tasks), key=lambda t: user_tasks[t].sourceline or 0)
        if tasks:
            problems.append(_problem(file, tasks[0], f"rework loop through {', '.join(tasks)} has no cap",
                                     user_tasks[tasks[0]].sourceline, FIX_LOOP))
    return problems


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components that hold a cycle (iterative Tarjan)."""
    index, low, on_stack, stack, out, counter = {}, {}, set(), [], [], itertools.count()
    for start in list(graph):
        if start in index:
            continue
        work = [(start, iter(graph.get(start, ())))]
        index[start] = low[start] = next(counter)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = next(counter)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph.get(child, ()))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in graph.get(node, ()):
                        out.append(component)
    return out
