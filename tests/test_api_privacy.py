"""Personal data: the reporter's phone and ID number reach only the accepting community and the handling unit.

Every response a user gets, on every endpoint that carries case data, is
searched for the raw phone and ID number: users of units outside the rule
must never see them, only the masked forms; users of the two units inside
the rule see them in the case.
"""
from __future__ import annotations

from tests.api_support import COMMUNITY, ID_NO, MASKED_ID_NO, MASKED_PHONE, PHONE

OUTSIDE = ("jgzx_supervisor", "jgzx_supervisor2", "auditor", "xljd_handler", "xljd_leader", "designer", "admin")
INSIDE = ("yjp_acceptor", "yjp_grid", "cgj_handler", "cgj_dispatcher", "cgj_leader")


def _responses(api, user, case_no) -> list:
    """Every response with case data that `user` can get for the case (at the review step)."""
    task = api.open_task(case_no)
    out = [
        api.get(f"/api/v1/cases/{case_no}", user),
        api.get("/api/v1/cases", user),
        api.get("/api/v1/cases", user, query_string={"q": "漏水"}),
        api.get(f"/api/v1/cases/{case_no}/events", user),
        api.get(f"/api/v1/cases/{case_no}/comments", user),
        api.get(f"/api/v1/tasks/{task['id']}", user),
        api.get("/api/v1/tasks", user),
        api.get("/api/v1/tasks", user, query_string={"scope": "mine"}),
        api.post(f"/api/v1/tasks/{task['id']}/claim", user),
        api.post(f"/api/v1/tasks/{task['id']}/unclaim", user),
    ]
    for resp in out:
        assert resp.status_code in (200, 403, 409), (user, resp.request.path, resp.get_json())
    return out


def test_outside_the_rule_every_response_is_masked(api):
    case_no, _ = api.at_signing()
    api.post(f"/api/v1/cases/{case_no}/comments", "cgj_handler", {"body": "请联系当事人"})
    api.drive(case_no, "sign_for", "handle", "approve")
    api.step(case_no, "evaluate", rating="dissatisfied")
    for user in OUTSIDE:
        responses = _responses(api, user, case_no)
        for resp in responses:
            text = resp.get_data(as_text=True)
            assert PHONE not in text and ID_NO not in text, (user, resp.request.path)
        case = responses[0].get_json()
        assert case["reporter"] == {"name": "张三", "phone": MASKED_PHONE, "id_no": MASKED_ID_NO}, user
        listed = responses[1].get_json()["items"][0]
        assert listed["reporter"]["phone"] == MASKED_PHONE, user
        started = responses[3].get_json()[0]
        assert started["payload"]["intake"]["reporter"]["phone"] == MASKED_PHONE, user
        assert responses[5].get_json()["case"]["reporter"]["phone"] == MASKED_PHONE, user

    # the supervision centre works the case: what it gets back stays masked
    review = api.open_task(case_no)
    claimed = api.post(f"/api/v1/tasks/{review['id']}/claim", "jgzx_supervisor")
    done = api.post(f"/api/v1/tasks/{review['id']}/complete", "jgzx_supervisor",
                    {"data": {"instructions": "督办：三日内现场整改"}})
    for resp in (claimed, done):
        assert resp.status_code == 200
        assert PHONE not in resp.get_data(as_text=True) and ID_NO not in resp.get_data(as_text=True)
    assert done.get_json()["reporter"]["phone"] == MASKED_PHONE


def test_inside_the_rule_the_reporter_is_shown(api):
    case_no, _ = api.at_signing()
    for user in INSIDE:
        case = api.get(f"/api/v1/cases/{case_no}", user).get_json()
        assert case["reporter"] == {"name": "张三", "phone": PHONE, "id_no": ID_NO}, user
        assert api.get("/api/v1/cases", user).get_json()["items"][0]["reporter"]["phone"] == PHONE, user
        events = api.get(f"/api/v1/cases/{case_no}/events", user).get_json()
        assert events[0]["payload"]["intake"]["reporter"]["id_no"] == ID_NO, user
    assert api.case(case_no, "yjp_acceptor")["community"] == COMMUNITY


def test_masks():
    from engine.services.views import mask

    assert mask("13812345678") == "138****5678"
    assert mask("420502198001011234") == "420***********1234"
    assert mask("0717-6221234") == "071*****1234"
    assert mask("123456") == "****56" and mask(None) is None and mask("") == ""
