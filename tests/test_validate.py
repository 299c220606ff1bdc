"""Designers' validation: every rule on a minimal broken diagram, any file gets a verdict, and the CLI.

The diagrams are built here, from a small valid template: one user task in the
community lane with a deadline timer, a gateway with a capped rework loop.
The folder of foreign, broken and hostile files is generated in tmp_path.
"""
from __future__ import annotations

import pytest

from engine.services.processes import validate_files, validate_sources

HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" '
        'id="defs" targetNamespace="http://bpmn.io/schema/bpmn">\n')
COND = '<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{}</bpmn:conditionExpression>'


def diagram(*, due="due_at('mediation')", timer_kind="due", lane="社区", gw_default=' default="f_done"',
            redo="answer == 'redo' and rework_count &lt; max_reworks", done=None, extra="", handler="route_case"):
    done_flow = (f'<bpmn:sequenceFlow id="f_done" sourceRef="gw" targetRef="end">{COND.format(done)}</bpmn:sequenceFlow>'
                 if done else '<bpmn:sequenceFlow id="f_done" sourceRef="gw" targetRef="end"/>')
    redo_flow = (f'<bpmn:sequenceFlow id="f_redo" sourceRef="gw" targetRef="count">{COND.format(redo)}</bpmn:sequenceFlow>'
                 if redo else '<bpmn:sequenceFlow id="f_redo" sourceRef="gw" targetRef="count"/>')
    return (HEAD + f'''<bpmn:process id="mini" name="mini" isExecutable="true">
  <bpmn:laneSet id="ls"><bpmn:lane id="lane1" name="{lane}"><bpmn:flowNodeRef>work</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
  <bpmn:startEvent id="start"/>
  <bpmn:serviceTask id="svc"><bpmn:extensionElements>
    <spiffworkflow:serviceTaskOperator id="{handler}" resultVariable="r"><spiffworkflow:parameters/></spiffworkflow:serviceTaskOperator></bpmn:extensionElements></bpmn:serviceTask>
  <bpmn:userTask id="work" name="work"><bpmn:extensionElements><spiffworkflow:properties>
    <spiffworkflow:property name="status" value="mediating"/>
    <spiffworkflow:property name="field.answer" value="enum:ok|redo|other required"/>
  </spiffworkflow:properties></bpmn:extensionElements></bpmn:userTask>
  <bpmn:boundaryEvent id="due_work" attachedToRef="work" cancelActivity="false">
    <bpmn:extensionElements><spiffworkflow:properties>
      <spiffworkflow:property name="timer_kind" value="{timer_kind}"/></spiffworkflow:properties></bpmn:extensionElements>
    <bpmn:timerEventDefinition><bpmn:timeDate>{due}</bpmn:timeDate></bpmn:timerEventDefinition>
  </bpmn:boundaryEvent>
  <bpmn:exclusiveGateway id="gw"{gw_default}/>
  <bpmn:scriptTask id="count"><bpmn:script>rework_count = rework_count + 1</bpmn:script></bpmn:scriptTask>
  <bpmn:endEvent id="end"/><bpmn:endEvent id="end_late"/>
  {extra}
  <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="svc"/>
  <bpmn:sequenceFlow id="f2" sourceRef="svc" targetRef="work"/>
  <bpmn:sequenceFlow id="f3" sourceRef="work" targetRef="gw"/>
  <bpmn:sequenceFlow id="f_late" sourceRef="due_work" targetRef="end_late"/>
  {done_flow}
  {redo_flow}
  <bpmn:sequenceFlow id="f_again" sourceRef="count" targetRef="work"/>
</bpmn:process>
</bpmn:definitions>
''').encode()


@pytest.fixture(scope="module")
def vrt(tmp_path_factory):
    """A runtime for checking files only (no database is touched)."""
    from app import create_app, runtime_of

    return runtime_of(create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "TESTING": True}))


def problems_of(vrt, data: bytes, name: str = "mini.bpmn") -> list[dict]:
    return validate_sources(vrt, {name: data})


def reasons(problems) -> list[tuple[str | None, str]]:
    return [(p["element"], p["reason"]) for p in problems]


def test_the_template_and_the_standard_procedure_pass(vrt):
    assert problems_of(vrt, diagram()) == []
    standard = (vrt.processes_dir / "dispute_urban_management.bpmn").read_bytes()
    assert problems_of(vrt, standard, "dispute_urban_management.bpmn") == []


def test_every_problem_names_file_element_line_reason_and_fix(vrt):
    found = problems_of(vrt, diagram(timer_kind="warn"))
    assert found and all({"file", "element", "line", "reason", "fix"} <= set(p) for p in found)
    assert found[0]["file"] == "mini.bpmn" and found[0]["element"] == "work" and found[0]["line"] > 1


@pytest.mark.parametrize("kwargs, element, words", [
    ({"timer_kind": "warn"}, "work", "no deadline timer"),
    ({"due": "due_at('no_such_step')"}, "due_work", "does not evaluate"),
    ({"due": "'P1D'"}, "due_work", "not a valid ISO 8601"),
    ({"due": "'2025-03-01T09:00:00'"}, "due_work", "no UTC offset"),
    ({"due": "undefined_name + 'x'"}, "due_work", "does not evaluate"),
    ({"due": "open('/etc/passwd').read()"}, "due_work", "expression refused"),
    ({"lane": "nowhere"}, "work", "maps to no role"),
    ({"handler": "no_such_handler"}, "svc", "unknown service handler"),
    ({"gw_default": "", "done": None}, "gw", "no default flow and flow f_done has no condition"),
    ({"redo": None}, "gw", "flow f_redo has no condition"),
    ({"gw_default": "", "done": "answer == 'redo' and rework_count &lt; max_reworks"}, "gw", "same condition"),
    ({"gw_default": "", "done": "answer != 'ok'"}, "gw", "all taken when answer='redo'"),
    ({"redo": "answer == 'redo'"}, "work", "rework loop through work has no cap"),
])
def test_each_rule_names_the_element(vrt, kwargs, element, words):
    found = problems_of(vrt, diagram(**kwargs))
    assert any(p["element"] == element and words in p["reason"] for p in found), reasons(found)


def test_a_loop_capped_by_a_counter_passes_and_any_counter_name_counts(vrt):
    assert problems_of(vrt, diagram(redo="answer == 'redo' and round_index &lt;= 2")) == []


def test_a_user_task_without_a_lane_is_refused(vrt):
    data = diagram().replace('<bpmn:laneSet id="ls"><bpmn:lane id="lane1" name="社区"><bpmn:flowNodeRef>work'
                             '</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>'.encode(), b"")
    assert ("work", "user task is not in a lane") in reasons(problems_of(vrt, data))


# -- hostile code refused at validation, by running its literal-only parts ------------------

COUNT_SCRIPT = b"rework_count = rework_count + 1"
# name -> (script of the `count` task, words of the reason); each is legal Python the checker accepts.
HOSTILE_SCRIPTS = {
    "shared_reference_bomb": ("x = [0]*1000000; y = [x]*1000000", "too large to store"),
    "small_list_shared_a_million_times": ("x = [0] * 1000; y = [x] * 1000000", "variable 'y' is too large"),
    "string_times_ten_billion": ("x = 'a' * (10 ** 10)", "exceeds the limit of 1,000,000"),
    "nested_comprehension_bomb": ("t = [[[0] * 1000 for i in range(1000)] for j in range(1000)]",
                                  "operation budget"),
    "percent_s_string_building": ("s = ('%s' * 10 ** 7) % tuple(range(10 ** 7))", "exceeds the limit"),
    "deep_nesting": ("a = []\nfor i in range(500):\n    a = [a]", "nested deeper than 100 levels"),
    "huge_int_power": ("n = 7 ** 7 ** 7", "integer result over 4096 bits"),
    "range_bomb_reading_task_data": ("for i in range(10 ** 12):\n    rework_count = rework_count + 1",
                                     "range of more than 1,000,000 items"),
    "dict_bomb": ("d = {i: 'x' * 300 for i in range(10 ** 4)}", "variable 'd' is too large to store"),
    "doubling_bomb": ("a = [0]\nfor i in range(64):\n    a = [a, a]", "variable 'a' is too large to store"),
    "bomb_behind_a_data_branch": ("if answer == 'redo':\n    s = 'ab' * 10 ** 9\nrework_count = rework_count + 1",
                                  "line 2: result of 2,000,000,000 items"),
}


def _line_of(data: bytes, text: bytes) -> int:
    return data[: data.index(text)].count(b"\n") + 1


@pytest.mark.parametrize("name", HOSTILE_SCRIPTS)
def test_hostile_scripts_are_refused_naming_file_line_and_element(vrt, name):
    script, words = HOSTILE_SCRIPTS[name]
    data = diagram().replace(COUNT_SCRIPT, script.replace("<", "&lt;").encode())
    found = problems_of(vrt, data)
    assert [(p["file"], p["element"], p["line"]) for p in found] == [
        ("mini.bpmn", "count", _line_of(data, b"<bpmn:script>"))], found
    assert found[0]["reason"].startswith("expression refused: line ") and words in found[0]["reason"], found


def test_a_hostile_condition_is_refused_naming_its_flow(vrt):
    data = diagram(redo="answer == 'redo' and rework_count &lt; max_reworks and len('ab' * 10 ** 9) &gt; 0")
    found = problems_of(vrt, data)
    assert [(p["element"], p["line"]) for p in found] == [("f_redo", _line_of(data, b'id="f_redo"'))], found
    assert "result of 2,000,000,000 items" in found[0]["reason"]


def test_ordinary_scripts_that_read_task_data_pass(vrt):
    script = b"total = 0\nfor i in range(10):\n    total = total + i\nlabels = [str(i) for i in range(100)]\n" \
             b"rework_count = rework_count + 1"
    assert problems_of(vrt, diagram().replace(COUNT_SCRIPT, script)) == []


# -- any file gets a verdict ------------------------------------------------------------

CAMUNDA = '''<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d" targetNamespace="http://bpmn.io/schema/bpmn"
  exporter="Camunda Modeler" exporterVersion="5.20.0">
  <bpmn:process id="camunda_proc" isExecutable="true">
    <bpmn:startEvent id="s"><bpmn:outgoing>a</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="approve" name="Approve" camunda:assignee="demo" camunda:formKey="embedded:app:f.html">
      <bpmn:incoming>a</bpmn:incoming><bpmn:outgoing>b</bpmn:outgoing></bpmn:userTask>
    <bpmn:serviceTask id="mail" camunda:class="org.example.Mail"><bpmn:incoming>b</bpmn:incoming>
      <bpmn:outgoing>c</bpmn:outgoing></bpmn:serviceTask>
    <bpmn:endEvent id="e"><bpmn:incoming>c</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="a" sourceRef="s" targetRef="approve"/>
    <bpmn:sequenceFlow id="b" sourceRef="approve" targetRef="mail"/>
    <bpmn:sequenceFlow id="c" sourceRef="mail" targetRef="e"/>
  </bpmn:process>
</bpmn:definitions>'''
SIGNAVIO = '''<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:signavio="http://www.signavio.com"
  id="sid-1" targetNamespace="http://www.signavio.com" exporter="Signavio Process Editor" exporterVersion="17.4.0">
  <process id="sid-proc" isClosed="false" isExecutable="false" processType="None">
    <extensionElements><signavio:signavioDiagramMetaData metaKey="revisionid" metaValue="abc"/></extensionElements>
    <task id="sid-task" name="Check"><incoming>sid-f1</incoming></task>
    <startEvent id="sid-start"><outgoing>sid-f1</outgoing></startEvent>
    <sequenceFlow id="sid-f1" sourceRef="sid-start" targetRef="sid-task"/>
  </process>
</definitions>'''
VISIO = '''<?xml version="1.0" encoding="UTF-8"?>
<VisioDocument xmlns="http://schemas.microsoft.com/visio/2003/core"><Pages><Page ID="0"/></Pages></VisioDocument>'''
SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'
DMN = '''<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="d" name="d" namespace="x">
  <decision id="dec" name="dec"><decisionTable id="t"><input id="i"><inputExpression id="ie" typeRef="string">
  <text>category</text></inputExpression></input><output id="o" name="out" typeRef="string"/>
  <rule id="r"><inputEntry id="ie1"><text>"a"</text></inputEntry><outputEntry id="oe1"><text>"b"</text></outputEntry>
  </rule></decisionTable></decision></definitions>'''
LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
          + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'
                    for i in range(1, 10))
          + ']><bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">&lol9;</bpmn:definitions>')
XXE = ('<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
       '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"><bpmn:documentation>&x;'
       '</bpmn:documentation></bpmn:definitions>')
EXTERNAL_DTD = ('<?xml version="1.0"?><!DOCTYPE d SYSTEM "http://127.0.0.1:9/evil.dtd">'
                '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"/>')


def generated_files() -> dict[str, bytes]:
    """Foreign modellers' exports, broken and hostile XML: file name → bytes."""
    template = diagram()
    return {
        "camunda.bpmn": CAMUNDA.encode(),
        "signavio.bpmn": SIGNAVIO.encode(),
        "visio.bpmn": VISIO.encode(),
        "bpmn_io_no_process.bpmn": (HEAD + "</bpmn:definitions>").encode(),
        "picture.bpmn": SVG.encode(),
        "decision_in_disguise.bpmn": DMN.encode(),
        "empty.bpmn": b"",
        "whitespace.bpmn": b"  \n\t ",
        "junk.bpmn": bytes(range(256)) * 4,
        "latin1.bpmn": '<?xml version="1.0" encoding="ISO-8859-1"?><a>é</a>'.encode("latin-1"),
        "bad_utf8.bpmn": template.replace(b"mini", b"mini\xff", 1),
        "truncated.bpmn": template[: len(template) // 2],
        "huge.bpmn": template.replace(b"</bpmn:definitions>", b"<!--" + b"x" * (3 * 1024 * 1024) + b"-->"
                                      b"</bpmn:definitions>"),
        "laughs.bpmn": LAUGHS.encode(),
        "xxe.bpmn": XXE.encode(),
        "external_dtd.bpmn": EXTERNAL_DTD.encode(),
        "not_xsd_valid.bpmn": template.replace(b"<bpmn:startEvent", b"<bpmn:startEvnt", 1)
                                      .replace(b'<bpmn:startEvent id="start"/>', b'<bpmn:startEvnt id="start"/>'),
        "unexecutable.bpmn": template.replace(b'isExecutable="true"', b'isExecutable="false"'),
        "long_id.bpmn": template.replace(b'process id="mini"', b'process id="' + b"p" * 150 + b'"'),
        "script_attack.bpmn": template.replace(b"rework_count = rework_count + 1",
                                               b"().__class__.__base__.__subclasses__()"),
        "script_shared_reference_bomb.bpmn": template.replace(COUNT_SCRIPT, b"x = [0]*1000000; y = [x]*1000000"),
        "script_string_bomb.bpmn": template.replace(COUNT_SCRIPT, b"x = 'a' * (10 ** 10)"),
    }


def test_every_generated_file_gets_a_verdict_and_only_the_good_one_passes(vrt, tmp_path):
    files = {**generated_files(), "good.bpmn": diagram()}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    for name, data in files.items():
        verdict = validate_files(vrt, {name: data})
        assert [f["file"] for f in verdict["files"]] == [name]
        assert verdict["valid"] is (name == "good.bpmn"), (name, verdict)
        for p in verdict["files"][0]["problems"]:
            assert isinstance(p["reason"], str) and p["reason"] and "Traceback" not in p["reason"]
    from engine.core.definitions import read_sources

    together = validate_files(vrt, read_sources([tmp_path]))
    assert {f["file"] for f in together["files"]} >= set(files)


def test_hostile_xml_is_refused_without_expanding_or_fetching(vrt):
    for name in ("laughs.bpmn", "xxe.bpmn", "external_dtd.bpmn"):
        found = problems_of(vrt, generated_files()[name], name)
        assert [p["reason"] for p in found] == ["DOCTYPE declarations (entities, external DTDs) are refused"]
        assert "root:" not in str(found)
    assert "larger than" in problems_of(vrt, generated_files()["huge.bpmn"], "huge.bpmn")[0]["reason"]


# -- the command line -------------------------------------------------------------------


def test_cli_validate_lists_each_verdict_and_exits_1_on_a_problem(app, tmp_path):
    runner = app.test_cli_runner()
    (tmp_path / "good.bpmn").write_bytes(diagram())
    ok = runner.invoke(args=["processes", "validate", str(tmp_path / "good.bpmn")])
    assert ok.exit_code == 0, ok.output
    assert "good.bpmn: OK" in ok.output and "1 file(s) valid" in ok.output
    (tmp_path / "late.bpmn").write_bytes(diagram(timer_kind="warn").replace(b'id="mini"', b'id="late"'))
    (tmp_path / "junk.bpmn").write_bytes(b"\x00\x01junk")
    bad = runner.invoke(args=["processes", "validate", str(tmp_path)])
    assert bad.exit_code == 1
    assert "good.bpmn: OK" in bad.output and "late.bpmn: 1 problem(s)" in bad.output
    assert "[work]: user task has no deadline timer" in bad.output and "fix: attach a boundary timer" in bad.output
    assert "junk.bpmn: 1 problem(s)" in bad.output and "2 of 3 file(s) have problems" in bad.output
    assert runner.invoke(args=["processes", "validate"]).exit_code == 0  # the processes directory


def test_cli_deploy_stores_only_valid_files_and_diff_names_the_changes(app, rt, tmp_path):
    from engine.services.processes import list_versions

    runner = app.test_cli_runner()
    (tmp_path / "mini.bpmn").write_bytes(diagram(timer_kind="warn"))
    refused = runner.invoke(args=["processes", "deploy", str(tmp_path / "mini.bpmn")])
    assert refused.exit_code == 1 and "no deadline timer" in refused.output
    assert "mini" not in runner.invoke(args=["processes", "list"]).output
    (tmp_path / "mini.bpmn").write_bytes(diagram())
    first = runner.invoke(args=["processes", "deploy", "--actor", "alice", str(tmp_path / "mini.bpmn")])
    assert first.exit_code == 0 and "mini v1 deployed (mini.bpmn)" in first.output
    again = runner.invoke(args=["processes", "deploy", str(tmp_path / "mini.bpmn")])
    assert again.exit_code == 0 and "mini v1 unchanged" in again.output
    (tmp_path / "mini.bpmn").write_bytes(diagram(due="due_at('review')").replace(b'<bpmn:endEvent id="end_late"/>',
                                                                                 b'<bpmn:endEvent id="end_late2"/>')
                                        .replace(b'targetRef="end_late"', b'targetRef="end_late2"'))
    second = runner.invoke(args=["processes", "deploy", str(tmp_path / "mini.bpmn")])
    assert second.exit_code == 0 and "mini v2 deployed" in second.output
    assert [(v["version"], v["deployed_by"]) for v in list_versions(rt, "mini")] == [(1, "alice"), (2, "cli")]
    diff = runner.invoke(args=["processes", "diff", "mini", "1", "2"])
    assert diff.exit_code == 0, diff.output
    assert "+ end_late2 (endEvent)" in diff.output and "- end_late (endEvent)" in diff.output
    assert "~ due_work (boundaryEvent)" in diff.output and "due_at('review')" in diff.output
    assert "~ f_late (sequenceFlow)" in diff.output
    missing = runner.invoke(args=["processes", "diff", "mini", "1", "9"])
    assert missing.exit_code == 1 and "has no version 9" in missing.output
