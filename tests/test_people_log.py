"""The people's-conditions log (民情日志): entries by grid workers, filters and counts, an entry becoming a case."""
from __future__ import annotations

import pytest

from engine.errors import Conflict, InvalidInput
from engine.rules.access import Caller
from engine.services import audit, cases, people_log

WORKER = Caller("yjp_grid", "张伟", "XL-XLJD-YJP", "community", frozenset({"grid_worker"}))


def entry(rt, **extra):
    form = {"grid": "YJP-03", "household": "云集路12号3单元201", "topic": "邻里纠纷", "notes": "楼上漏水，两户争吵",
            **extra}
    return people_log.record_entry(rt, form, user=WORKER)


def test_entries_lists_filters_and_counts(rt, clock):
    first = entry(rt, visited_on="2025-03-01")
    assert (first["community"], first["worker"], first["case_no"]) == ("XL-XLJD-YJP", "yjp_grid", None)
    entry(rt, topic="劳资纠纷", visited_on="2025-03-03")
    people_log.record_entry(rt, {"grid": "YJP-01", "household": "云集路1号", "topic": "邻里纠纷", "notes": "噪音",
                                 "community": "XL-XLJD-YJP"}, "other_worker")
    with pytest.raises(InvalidInput) as err:
        entry(rt, household="", visited_on="2099-01-01")
    assert set(err.value.errors) == {"household", "visited_on"}
    assert people_log.list_entries(rt)["total"] == 3
    assert people_log.list_entries(rt, {"worker": "yjp_grid"})["total"] == 2
    assert people_log.list_entries(rt, {"topic": "邻里纠纷", "from": "2025-03-02"})["total"] == 1
    assert people_log.count_entries(rt, "worker") == [{"worker": "other_worker", "entries": 1, "cases": 0},
                                                      {"worker": "yjp_grid", "entries": 2, "cases": 0}]
    assert [c["week"] for c in people_log.count_entries(rt, "week")] == ["2025-02-24", "2025-03-03"]
    assert {c["grid"]: c["entries"] for c in people_log.count_entries(rt, "grid")} == {"YJP-01": 1, "YJP-03": 2}


def test_an_entry_becomes_a_case_linked_both_ways(rt, clock):
    e = entry(rt, follow_up="三日内回访")
    out = people_log.entry_to_case(rt, e["id"], {"category": "urban_management",
                                                 "reporter": {"name": "李四", "phone": "13900000000"}}, "yjp_grid")
    case = cases.get_case(rt, out["case"]["case_no"])
    assert case["channel"] == "grid_worker" and "楼上漏水" in case["description"] and "三日内回访" in case["description"]
    assert out["entry"]["case_no"] == case["case_no"]
    found = people_log.list_entries(rt, {"case_no": case["case_no"]})["items"]
    assert [i["id"] for i in found] == [e["id"]]
    assert people_log.count_entries(rt, "grid") == [{"grid": "YJP-03", "entries": 1, "cases": 1}]
    with pytest.raises(Conflict):
        people_log.entry_to_case(rt, e["id"], {"category": "urban_management",
                                               "reporter": {"name": "李四", "phone": "13900000000"}}, "yjp_grid")
    assert audit.verify_cases(rt, [case["case_no"]])["failed"] == 0
