"""What joins the notification dispatcher to the rest: dead letters become incidents, retried from there;
source systems' status callbacks are delivered to their callback URL, signed with their secret."""
from __future__ import annotations

import json

from sqlalchemy import select

from engine.rules.access import Caller
from engine.services.clients import create_client
from engine.services.incident_retry import retry_incident
from engine.services.incidents import list_incidents
from engine.store.incident_models import Incident
from engine.store.models import Outbox
from tests.gateways import Gateway, channel_config, webhook_signature_ok
from tests.support import Driver

ADMIN = Caller("ops_admin", "管理员", "YC-JGZX", "supervision_centre", frozenset({"admin"}))


def _dispatcher(rt, gateway, **extra):
    from channels import build_channels
    from engine.services.outbox import Dispatcher, Settings

    config = channel_config(gateway, OUTBOX_BACKOFF_SECONDS="30", OUTBOX_QUIET_HOURS="off", **extra)
    return Dispatcher(rt, build_channels(config), Settings.from_config(config), worker="wiring")


def test_a_dead_message_opens_an_incident_and_its_retry_queues_it_again(rt, demo):
    case = Driver.start(rt).case  # the citizen's tracking-code SMS is queued at intake
    with Gateway(default=500) as gateway:
        assert _dispatcher(rt, gateway, OUTBOX_MAX_ATTEMPTS="1").run_until_idle() == {"dead": 1}
    page = list_incidents(rt, ADMIN, {"status": "open", "kind": "notification"})
    assert page["total"] == 1
    incident = page["items"][0]
    with rt.db.read() as s:
        message_id, key = s.execute(select(Outbox.id, Outbox.idempotency_key)
                                    .where(Outbox.kind == "tracking_code")).one()
    assert incident["source"] == f"outbox:{message_id}" and incident["element"] == "tracking_code"
    assert incident["case_no"] == case["case_no"] and "HTTP 500" in incident["error"]
    assert retry_incident(rt, ADMIN, incident["id"], "ops_admin")["outcome"] == "resolved"
    with rt.db.read() as s:
        assert s.get(Outbox, message_id).status == "pending"
        assert s.get(Incident, incident["id"]).status == "resolved"
    with Gateway() as gateway:
        assert _dispatcher(rt, gateway).run_until_idle() == {"sent": 1}
        assert [r["form"]["OutId"] for r in gateway.sms()] == [key]


def test_status_callbacks_reach_the_source_system_signed(client, rt, demo):
    with Gateway() as gateway:
        url = f"{gateway.url}/callback"
        key = create_client(rt, "hotline-12345", "intake", "hotline_12345", callback_url=url,
                            callback_secret="s3cret-shared-with-12345")["api_key"]
        body = {"external_ref": "12345-0001", "title": "楼上漏水纠纷", "description": "市民来电：楼上装修导致漏水。",
                "category": "urban_management", "reporter": {"name": "张三", "phone": "13812345678"},
                "location": {"address": "西陵区云集路12号", "grid": "YJP-03"}}
        resp = client.post("/api/v1/intake", json=body, headers={"X-Api-Key": key})
        assert resp.status_code == 201, resp.get_json()
        from engine.services import cases

        case = cases.get_case(rt, resp.get_json()["case_no"])
        cases.complete_task(rt, case["open_tasks"][0]["id"], {"mediation_result": "unresolved"}, "yjp_acceptor")
        outcomes = _dispatcher(rt, gateway).run_until_idle()
        [hook] = gateway.hooks()
    assert outcomes.get("sent", 0) >= 1
    assert webhook_signature_ok(hook, "s3cret-shared-with-12345")
    sent = json.loads(hook["body"])
    assert sent["kind"] == "status_changed" and sent["case_no"] == case["case_no"]
    assert sent["params"]["previous_status"] == "mediating" and sent["params"]["status"] == "signing"
    assert sent["params"]["external_ref"] == "12345-0001" and "13812345678" not in hook["body"].decode()
