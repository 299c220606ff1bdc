"""`flask org check`: every community reaches a unit with candidates at every ladder level, every
routed category a unit with candidates for each lane role; the ladder falls back to the next level up."""
from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

from engine.rules.organisation import Member, Organisation, Unit, check_organisation
from engine.rules.tables import load_tables
from engine.services import cases
from engine.services.org_load import import_organisation
from engine.services.seed import seed_demo
from tests.support import Driver

ROOT = Path(__file__).resolve().parents[1]
PROCESSES = ROOT / "processes"
LANES = {"dispute_neighbour": {"社区", "责任单位", "责任领导", "监管中心", "街道", "区综治中心", "市综治中心", "联席会议",
                               "分派台"}}


def _app(db_url, processes_dir):
    from app import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": db_url, "TESTING": True, "PROCESSES_DIR": str(processes_dir)})


def _drop_users(processes_dir: Path, *usernames: str) -> None:
    path = processes_dir / "demo_users.toml"
    text = path.read_text()
    for block in text.split("\n[[users]]")[1:]:
        if any(f'username = "{u}"' in block for u in usernames):
            text = text.replace("\n[[users]]" + block, "")
    path.write_text(text)
    assert not set(usernames) & {u["username"] for u in tomllib.loads(text)["users"]}


def test_the_shipped_demo_organisation_passes(app):
    result = app.test_cli_runner().invoke(args=["org", "check", str(PROCESSES)])
    assert result.exit_code == 0, result.output
    assert "every task has a unit with candidates" in result.output and "gap:" not in result.output


def test_the_loaded_demo_organisation_passes_and_a_broken_copy_names_its_gaps(db_url, clock, tmp_path):
    from engine.services.processes import deploy_paths

    broken = tmp_path / "processes"
    shutil.copytree(PROCESSES, broken)
    _drop_users(broken, "hbj_handler", "hbj_dispatcher", "xyjd_leader")
    app = _app(db_url, broken)  # PROCESSES_DIR is honoured: the copy's data tables and files
    from app import runtime_of

    deploy_paths(runtime_of(app), None, "tests")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["org", "check", str(broken)])
    assert result.exit_code == 1
    assert ("gap: category environment: lane 责任单位 (role handler) -> YC-HBJ: no active user of YC-HBJ holds role "
            "handler") in result.output
    assert "community XL-XYJD-DXL, level street: lane 街道 (role leader) -> XL-XYJD" in result.output
    assert "category environment: lane 责任领导" not in result.output  # hbj_leader is still there
    seeded = runner.invoke(args=["seed", "demo"])  # the same check refuses to load it, naming the gaps
    assert seeded.exit_code == 1 and "organisation_gaps" not in seeded.output and "gap(s)" in seeded.output
    assert "YC-HBJ" in seeded.output
    assert runner.invoke(args=["org", "check"]).exit_code == 1  # nothing loaded: organisation.toml, no users

    good = _app(db_url, PROCESSES)
    deploy_paths(runtime_of(good), None, "tests")
    assert good.test_cli_runner().invoke(args=["seed", "demo"]).exit_code == 0
    result = good.test_cli_runner().invoke(args=["org", "check"])
    assert result.exit_code == 0, result.output
    assert f"{(PROCESSES / 'demo_users.toml').read_text().count('[[users]]')} active users" in result.output


def _tree(*rows) -> Organisation:
    return Organisation(Unit(code, code, kind, parent, active) for code, kind, parent, active in rows)


def test_a_district_without_a_coordination_office_falls_back_to_the_city_and_a_missing_top_is_a_gap():
    tables = load_tables(PROCESSES)
    tables.routes = {"neighbour": tables.routes["neighbour"]}  # routed to the street office above the community
    rows = [("YC", "city", None, True), ("YC-ZZB", "coordination_office", "YC", True),
            ("YC-LXHY", "joint_meeting", "YC", True), ("YC-JGZX", "supervision_centre", "YC", True),
            ("DY", "district", "YC", True), ("DY-JD", "street", "DY", True), ("DY-JD-SQ", "community", "DY-JD", True)]
    members = [Member("a", "DY-JD-SQ", frozenset({"acceptor"})), Member("s", "DY-JD", frozenset({"leader", "handler"})),
               Member("c", "YC-ZZB", frozenset({"leader"})), Member("j", "YC-LXHY", frozenset({"leader"})),
               Member("v", "YC-JGZX", frozenset({"supervisor"}))]
    org = _tree(*rows)
    assert org.own_level_unit("district_coordination", "DY-JD-SQ") is None
    assert org.level_unit("district_coordination", "DY-JD-SQ") == "YC-ZZB"
    report = check_organisation(org, members, tables, LANES)
    assert report.ok, [g.describe() for g in report.gaps]
    assert any("district_coordination" in n and "YC-ZZB" in n and "DY-JD-SQ" in n for n in report.notes)

    # no coordination office and no joint meeting at the top: the district and city steps have nowhere to go
    top_less = _tree(*[r for r in rows if r[0] not in ("YC-ZZB", "YC-LXHY")])
    gaps = {(g.community, g.level, g.lane, g.role, g.reason) for g in
            check_organisation(top_less, members, tables, LANES).gaps}
    for level, lane in (("district_coordination", "区综治中心"), ("city_coordination", "市综治中心"),
                        ("joint_meeting", "联席会议")):
        assert ("DY-JD-SQ", level, lane, "leader", "no unit at this level or any level above") in gaps

    # an inactive street office is skipped (its level falls to the district's), an inactive unit has no candidates
    closed = _tree(*[(c, k, p, c != "DY-JD") for c, k, p, _ in rows])
    assert closed.street_of("DY-JD-SQ") is None and closed.level_unit("street", "DY-JD-SQ") == "YC-ZZB"
    assert {(g.category, g.lane, g.reason) for g in check_organisation(closed, members, tables, LANES).gaps} == {
        ("neighbour", "责任单位", "no active street office above the community"),
        ("neighbour", "责任领导", "no active street office above the community")}
    dead = _tree(*[(c, k, p, c != "YC-JGZX") for c, k, p, _ in rows])
    assert {(g.lane, g.reason) for g in check_organisation(dead, members, tables, LANES).gaps} == {
        ("监管中心", "unit YC-JGZX is inactive"), ("分派台", "unit YC-JGZX is inactive")}  # the routing desk too


def test_the_ladder_of_a_district_without_a_coordination_office_reaches_a_unit(rt, clock, tmp_path):
    """Observed: such a community escalated to district_coordinate with unit null. Now it reaches YC-ZZB."""
    seed_demo(rt)
    extra = tmp_path / "dy.toml"
    demo_units = (PROCESSES / "organisation.toml").read_text()
    extra.write_text(demo_units + '''
[[units]]
code = "DY"
name = "点军区"
kind = "district"
parent = "YC"

[[units]]
code = "DY-LJ"
name = "联棚街道"
kind = "street"
parent = "DY"

[[units]]
code = "DY-LJ-SQ"
name = "联棚社区"
kind = "community"
parent = "DY-LJ"
''')
    users = tmp_path / "users.toml"
    users.write_text((PROCESSES / "demo_users.toml").read_text() + '''
[[users]]
username = "dy_acceptor"
unit = "DY-LJ-SQ"
roles = ["acceptor"]

[[users]]
username = "dy_leader"
unit = "DY-LJ"
roles = ["leader", "handler"]
''')
    result = import_organisation(rt, [extra, users])
    assert result["units"]["created"] == 3 and result["users"]["created"] == 2
    assert result["check"]["ok"] and any("DY-LJ-SQ" in n for n in result["check"]["notes"])
    d = Driver.start(rt, community="DY-LJ-SQ")
    d.do("mediate", mediation_result="escalate")
    assert d.open["unit"] == "DY-LJ"
    d.do("street_coordinate", "dy_leader", decision="escalate", opinion="街道协调未果")
    assert d.case["level"] == "district_coordination"
    assert d.open["element"] == "district_coordinate" and d.open["unit"] == "YC-ZZB"
    assert cases.get_case(rt, d.case["case_no"])["current_unit"] == "YC-ZZB"
