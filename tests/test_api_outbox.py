"""The notifications over HTTP: a case's, scoped and masked like the case; the administrators' outbox and retry."""
from __future__ import annotations

import pytest

from engine.services import org
from engine.services.notifications import set_contact
from tests.api_support import MASKED_PHONE, PHONE
from tests.gateways import Gateway, channel_config


@pytest.fixture
def admin_token(rt, demo):
    org.create_user(rt, "ops_admin", "YC", ["admin"], "运维管理员")
    return org.issue_token(rt, "ops_admin")


def as_admin(api, token):
    return {"Authorization": f"Bearer {token}"}


def deliver(app, rt, **extra):
    from cli.outbox import build_dispatcher

    with Gateway(default=extra.pop("behaviour", "ok")) as gateway:
        app.config.update(channel_config(gateway, OUTBOX_BACKOFF_SECONDS="30", **extra))
        with app.app_context():
            outcomes = build_dispatcher(app, "api-test").run_until_idle()
        return outcomes, gateway.sms()


def replied_case(api) -> str:
    case_no = api.register()["case_no"]
    api.drive(case_no, "mediate", "sign_for", "handle", "approve")
    return case_no


def test_a_case_shows_its_notifications_and_their_delivery(app, rt, api):
    set_contact(rt, "unit", "YC-CGJ", phone="13900001111")
    case_no = replied_case(api)
    outcomes, sms = deliver(app, rt)
    assert outcomes == {"sent": 3, "dead": 1}  # the community has no contact yet
    resp = api.get(f"/api/v1/cases/{case_no}/notifications", "yjp_acceptor")
    assert resp.status_code == 200
    items = {m["kind"]: m for m in resp.get_json()}
    assert set(items) == {"tracking_code", "arrival", "reply_ready", "citizen_reply"}
    assert items["tracking_code"]["status"] == "sent" and items["tracking_code"]["address"] == PHONE
    citizen = items["citizen_reply"]
    assert (citizen["status"], citizen["channel"], citizen["recipient"], citizen["address"]) == \
        ("sent", "sms", PHONE, PHONE)
    assert citizen["idempotency_key"] in {r["form"]["OutId"] for r in sms}
    assert items["reply_ready"]["status"] == "dead" and "has no contact" in items["reply_ready"]["last_error"]
    assert items["arrival"]["text"].startswith(f"【矛盾联调】案件{case_no}")
    # The supervision centre sees the case, not the citizen's number; another community not even the case.
    masked = {m["kind"]: m for m in api.get(f"/api/v1/cases/{case_no}/notifications", "jgzx_supervisor").get_json()}
    assert masked["citizen_reply"]["recipient"] == MASKED_PHONE == masked["citizen_reply"]["address"]
    assert masked["arrival"]["address"] == "139****1111"
    resp = api.get(f"/api/v1/cases/{case_no}/notifications", "tjy_acceptor")
    assert resp.status_code == 404 and resp.get_json()["code"] == "case_not_found"


def test_administrators_list_filter_and_retry_the_outbox(app, rt, api, admin_token):
    case_no = replied_case(api)
    deliver(app, rt, behaviour=500, OUTBOX_MAX_ATTEMPTS="1")
    headers = as_admin(api, admin_token)
    page = api.client.get("/api/v1/outbox", headers=headers, query_string={"status": "dead"}).get_json()
    assert page["total"] == 4 and {m["case_no"] for m in page["items"]} == {case_no}  # tracking code included
    citizen = next(m for m in page["items"] if m["kind"] == "citizen_reply")
    assert citizen["recipient"] == MASKED_PHONE and "HTTP 500" in citizen["last_error"]
    assert api.client.get("/api/v1/outbox", headers=headers, query_string={"channel": "email"}).get_json()["total"] == 0
    assert api.client.get("/api/v1/outbox", headers=headers,
                          query_string={"case": "2099-000001"}).get_json()["total"] == 0
    resp = api.client.post(f"/api/v1/outbox/{citizen['id']}/retry", headers=headers)
    assert resp.status_code == 200
    assert (resp.get_json()["status"], resp.get_json()["attempts"]) == ("pending", 0)
    outcomes, sms = deliver(app, rt)
    assert outcomes == {"sent": 1} and sms[0]["form"]["OutId"] == citizen["idempotency_key"]
    resp = api.client.post(f"/api/v1/outbox/{citizen['id']}/retry", headers=headers)
    assert resp.status_code == 409 and "only failed or dead" in resp.get_json()["message"]


def test_the_outbox_is_the_administrators_and_bad_input_is_named(api, admin_token):
    headers = as_admin(api, admin_token)
    resp = api.get("/api/v1/outbox", "jgzx_supervisor")
    assert resp.status_code == 403 and resp.get_json()["code"] == "forbidden"
    assert api.post("/api/v1/outbox/1/retry", "cgj_leader").status_code == 403
    resp = api.client.get("/api/v1/outbox", headers=headers, query_string={"status": "lost"})
    assert resp.status_code == 422 and "status" in resp.get_json()["errors"]
    resp = api.client.post("/api/v1/outbox/999999/retry", headers=headers)
    assert resp.status_code == 404 and resp.get_json()["code"] == "outbox_message_not_found"
    assert api.client.get("/api/v1/outbox").status_code == 401
