"""The permission matrix: each role, in the task's own unit and in another, for view, claim, complete, delegate.

For each open task of the procedure, every listed demo user meets a fresh
case at that task and tries, in turn: to view the case, to claim the task
(released again when it worked), to delegate it to a candidate (released
again when it worked) and to complete it. 200: allowed; 403: the case is in
the user's scope but the role or unit does not allow the action; 404: the
case is outside the user's scope, so for them it does not exist.
"""
from __future__ import annotations

import pytest

from tests.api_support import STEPS

# user: (view, claim, complete, delegate)
OUT = (404, 404, 404, 404)
SEES = (200, 403, 403, 403)
MATRIX = {
    # 社区调解, in the accepting community (XL-XLJD-YJP, under street office XL-XLJD)
    "mediate": ("yjp_acceptor2", [], {
        "yjp_acceptor": (200, 200, 200, 403),       # acceptor, own community
        "tjy_acceptor": OUT,                        # acceptor, another community of the same street
        "gxl_acceptor": OUT,                        # acceptor, another district
        "yjp_grid": SEES,                           # grid worker, own community: registers, does not mediate
        "xljd_handler": SEES,                       # the street office sees its communities' cases
        "xljd_dispatcher": SEES,
        "xljd_leader": SEES,
        "cgj_handler": OUT,                         # not routed to it (yet)
        "jgzx_supervisor": SEES,
        "auditor": SEES,
    }),
    # 签收, in the routed unit YC-CGJ
    "sign_for": ("cgj_handler2", ["mediate"], {
        "cgj_handler": (200, 200, 200, 403),        # handler, own unit
        "cgj_dispatcher": (200, 200, 200, 200),     # the work centre acts for its handlers and delegates
        "cgj_leader": (200, 403, 403, 200),         # the leader delegates, does not handle
        "gaj_handler": OUT,                         # handler of another department
        "gaj_dispatcher": OUT,
        "gaj_leader": OUT,
        "xljd_handler": SEES,                       # handler of the street office: other unit, in scope
        "dgq_handler": OUT,                         # handler of another street office
        "xlsfj_handler": OUT,                       # a district department
        "yjp_acceptor": SEES,
        "gxl_acceptor": OUT,
        "jgzx_supervisor": SEES,
        "auditor": SEES,
        "designer": SEES,
        "admin": SEES,
    }),
    # 一笔审批, the routed unit's leader
    "approve": ("cgj_leader", ["mediate", "sign_for", "handle"], {
        "cgj_leader": (200, 200, 200, 200),
        "cgj_handler": SEES,                        # a handler cannot approve
        "cgj_dispatcher": (200, 403, 403, 200),     # the work centre may hand it to a leader, not approve it
        "gaj_leader": OUT,
        "xljd_leader": SEES,
        "jgzx_supervisor": SEES,
    }),
    # 监管中心督办, the supervision centre
    "review": ("jgzx_supervisor2", ["mediate", "sign_for", "handle", "approve", ("evaluate", "dissatisfied")], {
        "jgzx_supervisor": (200, 200, 200, 403),    # supervisors do not delegate
        "cgj_leader": SEES,
        "cgj_dispatcher": SEES,
        "yjp_acceptor": SEES,
        "gxl_acceptor": OUT,
        "auditor": SEES,
    }),
}


def _prepare(api, steps) -> tuple[str, dict]:
    case_no = api.register()["case_no"]
    for step in steps:
        element, rating = step if isinstance(step, tuple) else (step, None)
        if rating:
            api.step(case_no, element, rating=rating)
        else:
            api.step(case_no, element)
    return case_no, api.open_task(case_no)


def _try(api, case_no, task, user, delegate_to) -> tuple[int, int, int, int]:
    url = f"/api/v1/tasks/{task['id']}"
    view = api.get(f"/api/v1/cases/{case_no}", user).status_code
    claim = api.post(f"{url}/claim", user).status_code
    if claim == 200:
        assert api.post(f"{url}/unclaim", user).status_code == 200
    delegate = api.post(f"{url}/delegate", user, {"username": delegate_to}).status_code
    if delegate == 200:
        assert api.post(f"{url}/unclaim", user).status_code == 200
    complete = api.post(f"{url}/complete", user, {"data": STEPS[task["element"]][1]}).status_code
    return view, claim, complete, delegate


@pytest.mark.parametrize("element", list(MATRIX))
def test_permission_matrix(api, element):
    delegate_to, steps, expected = MATRIX[element]
    actual = {}
    for user in expected:
        case_no, task = _prepare(api, steps)
        assert task["element"] == element
        actual[user] = _try(api, case_no, task, user, delegate_to)
    assert actual == expected


def test_tasks_outside_scope_do_not_exist(api):
    case_no, task = _prepare(api, ["mediate"])
    url = f"/api/v1/tasks/{task['id']}"
    for user in ("gaj_handler", "gxl_acceptor", "xlsfj_handler"):
        assert api.get(url, user).status_code == 404
        assert api.post(f"{url}/unclaim", user).status_code == 404
        assert task["id"] not in [t["id"] for t in api.get("/api/v1/tasks", user).get_json()["items"]]
