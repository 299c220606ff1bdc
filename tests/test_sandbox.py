"""The BPMN sandbox: the checker, the resource guards, and the script engine in real workflows.

Malicious code is tried in both places a BPMN file carries Python: a script task
(exec) and a gateway condition (eval). Each payload is first shown to escape with
SpiffWorkflow's default engine (it creates a marker file), then shown to be refused
by `check_source` and by the sandboxed engine at run time, leaving no marker.
"""
from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path  # also reached by the getattr payload under the default engine
from xml.sax.saxutils import escape, quoteattr

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.spiff.parser import SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState

from engine.core import sandbox, sandbox_limits
from engine.core.sandbox import (
    SAFE_BUILTINS,
    SandboxEnvironment,
    SandboxLimitExceeded,
    SandboxScriptEngine,
    SandboxViolation,
    check_source,
    make_script_engine,
)


def add_working_days(n):
    return f"+{n} working days"


FUNCTIONS = {"add_working_days": add_working_days}
NAMES = set(FUNCTIONS)

# -- tiny BPMN files ---------------------------------------------------------------------

HEAD = ('<?xml version="1.0" encoding="UTF-8"?>'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" '
        'id="defs" targetNamespace="http://example.com/sandbox">'
        '<bpmn:process id="proc" isExecutable="true">')
TAIL = "</bpmn:process></bpmn:definitions>"


def _flow(fid, source, target, condition=None):
    if condition is None:
        return f'<bpmn:sequenceFlow id="{fid}" sourceRef="{source}" targetRef="{target}"/>'
    return (f'<bpmn:sequenceFlow id="{fid}" sourceRef="{source}" targetRef="{target}">'
            f'<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{escape(condition)}'
            f'</bpmn:conditionExpression></bpmn:sequenceFlow>')


def _script_task(tid, script, incoming, outgoing):
    return (f'<bpmn:scriptTask id="{tid}"><bpmn:incoming>{incoming}</bpmn:incoming>'
            f'<bpmn:outgoing>{outgoing}</bpmn:outgoing><bpmn:script>{escape(script)}</bpmn:script></bpmn:scriptTask>')


def script_bpmn(script: str) -> bytes:
    """start -> script task `the_script` -> end"""
    return (HEAD
            + '<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
            + _script_task("the_script", script, "f1", "f2")
            + '<bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>'
            + _flow("f1", "start", "the_script") + _flow("f2", "the_script", "end")
            + TAIL).encode()


def gateway_bpmn(condition: str) -> bytes:
    """start -> gateway `the_gateway`: if condition set path='yes', else (default) path='no'"""
    return (HEAD
            + '<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
            + '<bpmn:exclusiveGateway id="the_gateway" default="f_no"><bpmn:incoming>f1</bpmn:incoming>'
              '<bpmn:outgoing>f_yes</bpmn:outgoing><bpmn:outgoing>f_no</bpmn:outgoing></bpmn:exclusiveGateway>'
            + _script_task("set_yes", "path = 'yes'", "f_yes", "f2")
            + _script_task("set_no", "path = 'no'", "f_no", "f3")
            + '<bpmn:endEvent id="end_yes"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>'
            + '<bpmn:endEvent id="end_no"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>'
            + _flow("f1", "start", "the_gateway") + _flow("f_yes", "the_gateway", "set_yes", condition)
            + _flow("f_no", "the_gateway", "set_no") + _flow("f2", "set_yes", "end_yes")
            + _flow("f3", "set_no", "end_no")
            + TAIL).encode()


def service_bpmn(param_value: str) -> bytes:
    """start -> service task `call_router` (operation route_case, parameter unit=param_value) -> end"""
    return (HEAD
            + '<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
            + '<bpmn:serviceTask id="call_router"><bpmn:extensionElements>'
              '<spiffworkflow:serviceTaskOperator id="route_case" resultVariable="routing">'
              '<spiffworkflow:parameters>'
              f'<spiffworkflow:parameter id="unit" type="str" value={quoteattr(param_value)}/>'
              '</spiffworkflow:parameters></spiffworkflow:serviceTaskOperator></bpmn:extensionElements>'
              '<bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:serviceTask>'
            + '<bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>'
            + _flow("f1", "start", "call_router") + _flow("f2", "call_router", "end")
            + TAIL).encode()


def run(xml: bytes, script_engine, data=None) -> BpmnWorkflow:
    parser = SpiffBpmnParser()
    parser.add_bpmn_str(xml)
    workflow = BpmnWorkflow(parser.get_spec("proc"), script_engine=script_engine)
    for task in workflow.get_tasks(state=TaskState.READY):
        task.data.update(data or {})
    workflow.do_engine_steps()
    return workflow


def default_engine():
    """SpiffWorkflow's own engine: plain eval/exec with full builtins."""
    return PythonScriptEngine(environment=TaskDataEnvironment(dict(FUNCTIONS)))


# -- malicious code, in a script task and in a gateway condition ---------------------------

# name -> (script payload, condition payload, reason check_source gives, escapes the default engine)
# `M` stands for the marker file's path; a payload that runs creates the marker.
SUBCLASSES = ("[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0]"
              ".__init__.__globals__['system']('touch ' + M)")
ATTACKS = {
    "import": ("import pathlib\npathlib.Path(M).touch()", "import pathlib",
               "line 1: import is not allowed", "exec"),
    "dunder_import": ("__import__('pathlib').Path(M).touch()", "__import__('pathlib').Path(M).touch() or True",
                      "line 1: name '__import__' starts with an underscore", "both"),
    "subclasses": (SUBCLASSES, SUBCLASSES + " == 0", "line 1: attribute '__class__' starts with an underscore",
                   "both"),
    "open": ("x = 1\nopen(M, 'w').write('pwned')", "open(M, 'w').write('pwned') > 0",
             "call to unknown function 'open'", "both"),
    "getattr": ("getattr(add_working_days, '__globals__')['Path'](M).touch()",
                "getattr(add_working_days, '__globals__')['Path'](M).touch() or True",
                "line 1: call to unknown function 'getattr'", "both"),
    "lambda": ("(lambda: open(M, 'w'))()", "(lambda: open(M, 'w'))() is None", "line 1: lambda is not allowed",
               "both"),
    "def": ("def f():\n    open(M, 'w')\nf()", "def f(): pass", "line 1: def is not allowed", "exec"),
    "class": ("class A:\n    open(M, 'w')", "class A: pass", "line 1: class is not allowed", "exec"),
    "while": ("while True:\n    open(M, 'w')\n    break", "while True: pass", "line 1: while is not allowed",
              "exec"),
}
# Accepted by the checker, refused by the guards while running.
HUGE = {
    "pow_tower": ("x = 9**9**9", "9**9**9 > 0"),
    "string_times": ("x = 'a' * 10**10", "len('a' * 10**10) > 0"),
    "list_times": ("x = [0] * 10**9", "len([0] * 10**9) > 0"),
}


def _payload_for(name, mode, marker):
    script, condition, _, _ = ATTACKS[name]
    source = script if mode == "exec" else condition
    return source.replace("(M", f"({str(marker)!r}").replace("+ M", f"+ {str(marker)!r}")


def _bpmn(mode, source):
    return script_bpmn(source) if mode == "exec" else gateway_bpmn(source)


@pytest.mark.parametrize("mode", ["exec", "eval"])
@pytest.mark.parametrize("name", ATTACKS)
def test_attack_is_refused_by_check_source(name, mode, tmp_path):
    script, condition, reason, _ = ATTACKS[name]
    reasons = check_source(_payload_for(name, mode, tmp_path / "marker"), mode, NAMES)
    assert reasons, f"{name} accepted in {mode} mode"
    if mode == "exec" or ATTACKS[name][3] == "both":
        assert any(reason in r for r in reasons), reasons
    else:  # a statement where an expression is expected
        assert reasons[0].startswith("line 1: syntax error"), reasons


@pytest.mark.parametrize("name, mode", [(name, mode) for name, attack in ATTACKS.items()
                                        for mode in ("exec", "eval") if attack[3] in ("both", mode)])
def test_attack_escapes_the_default_engine(name, mode, tmp_path):
    """Control: the payloads are real; SpiffWorkflow's own engine runs them."""
    marker = tmp_path / "marker"
    run(_bpmn(mode, _payload_for(name, mode, marker)), default_engine())
    assert marker.exists()


@pytest.mark.parametrize("mode", ["exec", "eval"])
@pytest.mark.parametrize("name", ATTACKS)
def test_attack_is_refused_at_run_time(name, mode, tmp_path):
    marker = tmp_path / "marker"
    element = "the_script" if mode == "exec" else "the_gateway"
    with pytest.raises(WorkflowTaskException) as caught:
        run(_bpmn(mode, _payload_for(name, mode, marker)), make_script_engine(FUNCTIONS))
    err = caught.value
    assert err.error_type == "SandboxViolation"
    assert err.task_spec.bpmn_id == element
    assert "refused" in str(err)
    assert not marker.exists()


@pytest.mark.parametrize("mode", ["exec", "eval"])
@pytest.mark.parametrize("name", HUGE)
def test_huge_values_are_refused_at_run_time(name, mode):
    source = HUGE[name][0] if mode == "exec" else HUGE[name][1]
    assert check_source(source, mode, NAMES) == []  # legal Python, only too big
    with pytest.raises(WorkflowTaskException) as caught:
        run(_bpmn(mode, source), make_script_engine(FUNCTIONS))
    assert caught.value.error_type == "SandboxLimitExceeded"


def test_reasons_name_the_construct_and_line():
    assert check_source("x = 1\ny = open('/etc/passwd')", "exec", NAMES) == [
        "line 2: call to unknown function 'open'"]
    assert check_source("open('/etc/passwd')", "eval", NAMES) == ["line 1: call to unknown function 'open'"]
    assert check_source("x = (1", "exec", NAMES)[0].startswith("line 1: syntax error")
    assert check_source("x = 1\nfor\n", "exec", NAMES)[0].startswith("line 2: syntax error")
    assert check_source("send_email(to)", "eval", NAMES) == ["line 1: call to unknown function 'send_email'"]


@pytest.mark.parametrize("source, mode, reason", [
    ("(x for x in y).gi_frame.f_back.f_globals", "eval", "attribute 'gi_frame' is not allowed"),
    ("'{0.__class__}'.format(x)", "eval", "call to method 'format' is not allowed"),
    ("x.append(1)", "eval", "method 'append' changes data and is not allowed in an expression"),
    ("x.y = 1", "exec", "assigning to attribute 'y' is not allowed"),
    ("len = 3", "exec", "assigning to function name 'len' is not allowed"),
    ("add_working_days = 3", "exec", "assigning to function name 'add_working_days' is not allowed"),
    ("x[0]()", "eval", "only named functions and methods can be called"),
    ("f(_secret=1)", "eval", "keyword argument '_secret' starts with an underscore"),
    ("try:\n    pass\nexcept Exception:\n    pass", "exec", "try is not allowed"),
    ("raise ValueError()", "exec", "raise is not allowed"),
    ("with x:\n    pass", "exec", "with is not allowed"),
    ("global x", "exec", "global is not allowed"),
    ("del x", "exec", "del is not allowed"),
    ("(y := 1)", "eval", "walrus"),
    ("x: int = 1", "exec", "annotated assignment is not allowed"),
    ("eval('1')", "eval", "call to unknown function 'eval'"),
    ("type(x)", "eval", "call to unknown function 'type'"),
    ("vars()", "eval", "call to unknown function 'vars'"),
])
def test_other_constructs_are_refused(source, mode, reason):
    reasons = check_source(source, mode, NAMES)
    assert any(reason in r for r in reasons), reasons


def test_safe_builtins_hold_nothing_dangerous():
    dangerous = {"getattr", "setattr", "eval", "exec", "open", "compile", "globals", "locals", "vars", "dir",
                 "type", "object", "__import__", "breakpoint", "input", "help", "memoryview", "super", "isinstance"}
    assert not dangerous & SAFE_BUILTINS.keys()
    assert {"abs", "len", "range", "sorted", "sum", "True", "False", "None"} <= SAFE_BUILTINS.keys()


# -- what works -------------------------------------------------------------------------------

@pytest.mark.parametrize("condition, data, path", [
    ("rating in ('satisfied', 'basically_satisfied')", {"rating": "basically_satisfied"}, "yes"),
    ("rating in ('satisfied', 'basically_satisfied')", {"rating": "dissatisfied"}, "no"),
    ("decision == 'return' and return_count < max_returns",
     {"decision": "return", "return_count": 1, "max_returns": 2}, "yes"),
    ("decision == 'return' and return_count < max_returns",
     {"decision": "return", "return_count": 2, "max_returns": 2}, "no"),
    ("routed_unit is None", {"routed_unit": None}, "yes"),
    ("routed_unit is None", {"routed_unit": "street-office"}, "no"),
    ("add_working_days(3) == '+3 working days'", {}, "yes"),
])
def test_conditions_route_the_gateway(condition, data, path):
    assert check_source(condition, "eval", NAMES) == []
    workflow = run(gateway_bpmn(condition), make_script_engine(FUNCTIONS), data)
    assert workflow.is_completed()
    assert workflow.data["path"] == path


def test_scripts_update_task_data():
    script = "reply_text = result\nreply_unit = routed_unit\nrework_count = rework_count + 1\nrework_count += 1"
    assert check_source(script, "exec", NAMES) == []
    workflow = run(script_bpmn(script), make_script_engine(FUNCTIONS),
                   {"result": "mediated", "routed_unit": "unit-7", "rework_count": 0})
    assert workflow.is_completed()
    assert workflow.data == {"result": "mediated", "routed_unit": "unit-7", "rework_count": 2,
                             "reply_text": "mediated", "reply_unit": "unit-7"}


def test_allowed_function_is_callable_and_unknown_one_is_refused():
    workflow = run(script_bpmn("due = add_working_days(5)"), make_script_engine(FUNCTIONS))
    assert workflow.data["due"] == "+5 working days"
    with pytest.raises(WorkflowTaskException) as caught:
        run(script_bpmn("due = add_calendar_days(5)"), make_script_engine(FUNCTIONS))
    assert "call to unknown function 'add_calendar_days'" in str(caught.value)
    with pytest.raises(SandboxViolation):
        SandboxEnvironment().evaluate("add_working_days(1)", {})


def test_richer_scripts_work():
    env = SandboxEnvironment(FUNCTIONS)
    context = {"cases": [{"unit": "a", "days": 3}, {"unit": "b", "days": 9}], "name": "  Zhang San "}
    env.execute(
        "late = [c['unit'] for c in cases if c['days'] > 5]\n"
        "total = sum(c['days'] for c in cases)\n"
        "by_unit = {c['unit']: c['days'] for c in cases}\n"
        "label = f\"{name.strip().upper()}: {total:>4} days, {len(late)} late\"\n"
        "parts = name.split()\n"
        "for c in cases:\n"
        "    if c['days'] > 5:\n"
        "        c['late'] = True\n"
        "counts = {}\n"
        "for u in ['a', 'b', 'a']:\n"
        "    counts[u] = counts.get(u, 0) + 1\n",
        context)
    assert context["late"] == ["b"]
    assert context["total"] == 12
    assert context["by_unit"] == {"a": 3, "b": 9}
    assert context["label"] == "ZHANG SAN:   12 days, 1 late"
    assert context["parts"] == ["Zhang", "San"]
    assert context["cases"][1]["late"] is True
    assert context["counts"] == {"a": 2, "b": 1}


def test_execute_copies_back_only_plain_data():
    env = SandboxEnvironment(FUNCTIONS)
    context = {"items": [1], "when": date(2024, 5, 1)}
    env.execute("f = len\nfn = add_working_days\ng = (i for i in items)\nr = range(3)\nkeys = {'a': 1}.keys()\n"
                "items.append(len)\nn = 1\nt = (1, 'a')\ns = {1, 2}\nwhen2 = when\n"
                "nested = {'a': [1, {'b': None}]}", context)
    assert context["n"] == 1 and context["t"] == (1, "a") and context["s"] == {1, 2}
    assert context["when2"] == date(2024, 5, 1) and context["nested"] == {"a": [1, {"b": None}]}
    for name in ("f", "fn", "g", "r", "keys", "__builtins__", "_sb_binop"):
        assert name not in context
    assert context["items"] == [1]  # the list came to hold a function, so it was not copied back


def test_execute_keeps_decimal_and_datetime():
    env = SandboxEnvironment()
    context = {"amount": Decimal("1.50"), "at": datetime(2024, 5, 1, tzinfo=timezone.utc)}
    env.execute("double = amount + amount\nyear = at.year\nstamp = at.isoformat()", context)
    assert context["double"] == Decimal("3.00")
    assert context["year"] == 2024
    assert context["stamp"] == "2024-05-01T00:00:00+00:00"


def test_task_data_may_not_shadow_a_function():
    env = SandboxEnvironment(FUNCTIONS)
    with pytest.raises(ValueError, match="add_working_days"):
        env.execute("x = 1", {"add_working_days": 3})


def test_evaluate_does_not_change_task_data():
    env = SandboxEnvironment()
    context = {"items": [3, 1, 2], "n": 1}
    assert env.evaluate("sorted(items)[0] + n", context) == 2
    assert env.evaluate("[n for n in items]", context) == [3, 1, 2]
    assert context == {"items": [3, 1, 2], "n": 1}
    with pytest.raises(SandboxViolation):
        env.evaluate("items.append(4)", context)
    assert context["items"] == [3, 1, 2]


def test_compiled_code_is_cached():
    env = SandboxEnvironment(FUNCTIONS)
    first = env.compile("rating == 'satisfied'", "eval")
    assert env.compile("rating == 'satisfied'", "eval") is first
    assert env.compile("rating == 'satisfied'", "exec") is not first


def test_script_engine_validate():
    engine = make_script_engine(FUNCTIONS)
    assert isinstance(engine, SandboxScriptEngine)
    engine.validate("a < b")
    with pytest.raises(SandboxViolation) as caught:
        engine.validate("__import__('os')")
    assert caught.value.reasons == ["line 1: name '__import__' starts with an underscore"]
    assert caught.value.source == "__import__('os')"
    with pytest.raises(SyntaxError):  # as SpiffWorkflow's engine; its DMN engine relies on it
        engine.validate("> 5")


def test_script_error_with_non_string_argument_becomes_a_workflow_error():
    # SpiffWorkflow's own engine raises a TypeError while reporting `{}[5]`.
    with pytest.raises(WorkflowTaskException) as caught:
        run(script_bpmn("d = {}\nx = d[5]"), make_script_engine())
    assert caught.value.error_type == "KeyError"
    assert caught.value.line_number == 2


# -- service tasks -------------------------------------------------------------------------

def test_service_call_passes_evaluated_params_and_data():
    calls = []

    def caller(operation_name, operation_params, context):
        calls.append((operation_name, operation_params, dict(context)))
        return json.dumps({"unit": operation_params["unit"]["value"]})

    workflow = run(service_bpmn("'unit-' + str(case_no)"), make_script_engine(FUNCTIONS, caller), {"case_no": 7})
    assert workflow.data["routing"] == {"unit": "unit-7"}
    assert calls == [("route_case", {"unit": {"value": "unit-7", "type": "str"}}, {"case_no": 7})]


def test_service_error_names_the_element_and_keeps_its_cause():
    def caller(operation_name, operation_params, context):
        raise RuntimeError("routing table unavailable")

    with pytest.raises(WorkflowTaskException) as caught:
        run(service_bpmn("1"), make_script_engine(FUNCTIONS, caller))
    err = caught.value
    assert err.args[0] == "service task call_router failed: routing table unavailable"
    assert isinstance(err.__cause__, RuntimeError)
    assert err.error_type == "RuntimeError"
    assert not isinstance(err.__cause__, NameError)


def test_service_without_caller_fails_clearly():
    with pytest.raises(WorkflowTaskException) as caught:
        run(service_bpmn("1"), make_script_engine(FUNCTIONS))
    assert "call_router" in str(caught.value)
    assert "no service caller" in str(caught.value)


def test_service_parameter_is_sandboxed(tmp_path):
    marker = tmp_path / "marker"
    caller_calls = []
    with pytest.raises(WorkflowTaskException) as caught:
        run(service_bpmn(f"open({str(marker)!r}, 'w')"),
            make_script_engine(FUNCTIONS, lambda *a: caller_calls.append(a) or "{}"))
    assert caught.value.error_type == "SandboxViolation"
    assert not marker.exists() and not caller_calls


# -- resource guards ------------------------------------------------------------------------

@pytest.mark.parametrize("expression", [
    "2 ** 5000",
    "1 << 5000",
    "(2 ** 4000) * (2 ** 4000)",
    "range(10 ** 7)",
    "'ab' * 600000",
    "[1, 2] + [0] * 999999",
    "''.join(['a' * 999999] * 3)",
    "('a' * 999999).replace('a', 'aa')",
    "f'{1:>99999999}'",
    "'%99999999d' % 1",
    "'%*d' % (99999999, 1)",
    "str(['a' * 999999] * 3)",
    "f'{x}'",
    "round(1, -10 ** 9)",
    "[[0] * 999999 for i in range(1000)]",
    "sum(1 for i in range(10 ** 6) for j in range(10 ** 6))",
])
def test_guards_refuse_huge_results(expression):
    env = SandboxEnvironment()
    with pytest.raises(SandboxLimitExceeded) as caught:
        env.evaluate(expression, {"x": [["a" * 999999] * 2]})
    assert caught.value.source == expression


def test_guards_allow_ordinary_sizes():
    env = SandboxEnvironment()
    assert env.evaluate("2 ** 4000 > 0", {})
    assert env.evaluate("len('ab' * 400000)", {}) == 800000
    assert env.evaluate("len(list(range(10 ** 6)))", {}) == 10 ** 6
    assert env.evaluate("f'{3.14159:.2f}|{7:>5}|{d:%Y-%m}'", {"d": date(2024, 5, 1)}) == "3.14|    7|2024-05"


def test_scripts_cannot_grow_data_without_bound():
    env = SandboxEnvironment()
    with pytest.raises(SandboxLimitExceeded):
        env.execute("s = 'a'\nfor i in range(100):\n    s = s + s", {})
    with pytest.raises(SandboxLimitExceeded):
        env.execute("s = [0]\nfor i in range(100):\n    s += s", {})
    with pytest.raises(SandboxLimitExceeded):
        env.execute("s = [0]\nfor i in range(100):\n    s.extend(s)", {})


def test_operation_budget_and_time_limit(monkeypatch):
    env = SandboxEnvironment()
    monkeypatch.setattr(sandbox_limits, "OPERATION_BUDGET", 10_000)
    with pytest.raises(SandboxLimitExceeded, match="operation budget"):
        env.execute("n = 0\nfor i in range(100000):\n    n += 1", {})
    env.execute("n = 0\nfor i in range(1000):\n    n += 1", {})  # a fresh budget per run
    monkeypatch.setattr(sandbox_limits, "OPERATION_BUDGET", 10 ** 12)
    monkeypatch.setattr(sandbox_limits, "TIME_LIMIT_SECONDS", 0.05)
    with pytest.raises(SandboxLimitExceeded, match="time limit"):
        env.execute("for i in range(10 ** 6):\n    for j in range(10 ** 6):\n        pass", {})


def test_huge_error_messages_are_shortened():
    env = SandboxEnvironment()
    with pytest.raises(KeyError) as caught:
        env.evaluate("{}[(s, s)]", {"s": "a" * 999999})
    assert len(str(caught.value)) < 200


def test_sandbox_module_does_not_import_flask():
    assert "flask" not in Path(sandbox.__file__).read_text().lower()


# -- what a script returns: measured as stored, under the same budget and clock --------------

# Each finishes quickly, refused: the walk over results counts a shared reference each time it
# occurs (as JSON will write it) but visits each list once, and stops at the size limit.
HOSTILE_RESULTS = {
    "shared_reference_bomb": ("x = [0]*1000000; y = [x]*1000000", "too large to store"),
    "small_list_shared_a_million_times": ("x = [0] * 1000\ny = [x] * 1000000", "variable 'y' is too large to store"),
    "doubling_bomb": ("a = [0]\nfor i in range(64):\n    a = [a, a]", "variable 'a' is too large to store"),
    "cycle": ("s = [0]\ns.append(s)", "variable 's' contains itself"),
    "cycle_through_a_dict": ("d = {}\nd['me'] = [d]", "variable 'd' contains itself"),
    "deep_nesting": ("a = []\nfor i in range(500):\n    a = [a]", "nested deeper than 100 levels"),
    "many_small_variables": ("a = ['x' * 900000]\nb = ['y' * 900000]\nc = ['z' * 900000]",
                             "the data the script leaves is too large to store"),
}


@pytest.mark.parametrize("name", HOSTILE_RESULTS)
def test_hostile_results_are_refused_in_a_real_workflow(name):
    script, words = HOSTILE_RESULTS[name]
    assert check_source(script, "exec", NAMES) == []
    with pytest.raises(WorkflowTaskException) as caught:
        run(script_bpmn(script), make_script_engine(FUNCTIONS))
    assert caught.value.error_type == "SandboxLimitExceeded"
    assert caught.value.task_spec.bpmn_id == "the_script"
    assert words in str(caught.value), str(caught.value)


# Comparing, hashing and sorting follow shared references in C without a pause: charged first.
EXPANDING_OPERATIONS = [
    "a = [0]\nb = [0]\nfor i in range(40):\n    a = [a, a]\n    b = [b, b]\nsame = a == b",
    "t = (0,)\nfor i in range(60):\n    t = (t, t)\nd = {t: 1}",
    "t = (0,)\nfor i in range(60):\n    t = (t, t)\nfound = t in [1, 2]",
    "x = [0] * 1000000\ny = [x] * 1000000\nz = sorted(y)",
    "x = [0] * 1000000\ny = [x] * 100\nz = set(tuple(v) for v in y) if y.count(x) else 0",
    "t = (0,)\nfor i in range(60):\n    t = (t, t)\nd = {}\nv = d.get(t)",
]


@pytest.mark.parametrize("script", EXPANDING_OPERATIONS)
def test_operations_over_shared_references_are_charged_to_the_budget(script):
    with pytest.raises(SandboxLimitExceeded, match="operation budget"):
        SandboxEnvironment().execute(script, {})


def test_an_expression_result_is_measured_as_stored():
    env = SandboxEnvironment()  # an expression's value may become task data (a decision's output)
    with pytest.raises(SandboxLimitExceeded, match="the result is too large to store"):
        env.evaluate("[[[0] * 100] * 100] * 1000", {})
    assert len(env.evaluate("[[0] * 100] * 100", {})) == 100


def test_shared_references_are_stored_as_a_tree():
    data = {}
    SandboxEnvironment().execute("x = [1, 2]\ny = [x, x]", data)
    assert data["y"] == [[1, 2], [1, 2]] and data["y"][0] is not data["y"][1] and data["y"][0] is not data["x"]
    assert json.loads(json.dumps(data)) == data


def test_the_copy_in_and_out_share_the_run_budget(monkeypatch):
    env = SandboxEnvironment()
    big = {"items": [str(i) for i in range(20000)]}
    env.execute("n = 1", big)  # within the budget
    monkeypatch.setattr(sandbox_limits, "OPERATION_BUDGET", 20_000)
    with pytest.raises(SandboxLimitExceeded, match="operation budget"):
        env.execute("n = 1", big)  # only the copy of the task data into the script costs anything
    with pytest.raises(SandboxLimitExceeded, match="operation budget"):
        env.execute("x = list(range(12000))", {})  # 12,000 to build, then the result check and the copy
    monkeypatch.setattr(sandbox_limits, "OPERATION_BUDGET", 10 ** 12)
    monkeypatch.setattr(sandbox_limits, "TIME_LIMIT_SECONDS", 0.0)
    with pytest.raises(SandboxLimitExceeded, match="time limit"):
        env.execute("n = 1", big)


@pytest.mark.parametrize("script", [
    "t = (0,)\nfor i in range(60):\n    t = (t, t)\ns = {*[t]}",
    "a = [0]\nb = [0]\nfor i in range(40):\n    a = [a, a]\n    b = [b, b]\nm = max(a, b)",
])
def test_starred_sets_and_several_arguments_are_charged_too(script):
    with pytest.raises(SandboxLimitExceeded, match="operation budget"):
        SandboxEnvironment().execute(script, {})
