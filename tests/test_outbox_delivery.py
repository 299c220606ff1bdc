"""The outbox dispatcher against real local providers: an HTTP SMS gateway and webhook receiver, and SMTP.

Each channel's delivery, failure, retry with backoff and dead letter; quiet
hours; a crash between sending and recording (the lease expires, the message
goes again with the same key); two dispatchers sharing the table; and the
notifications of a real case walked through the standard procedure.
"""
from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from channels import build_channels
from engine import clock as clock_mod
from engine.rules.notifications import load_templates
from engine.services.notifications import retry_message, set_contact
from engine.services.outbox import Dispatcher, Settings
from engine.store.models import Outbox
from tests.gateways import Gateway, Mailbox, channel_config, webhook_signature_ok
from tests.support import Driver

UNIT, LEADER_UNIT = "YC-CGJ", "YC-GAJ"
ARRIVAL = {"case_no": "2025-000001", "category": "城市管理", "unit": "宜昌市城市管理执法局"}


@pytest.fixture
def gateway():
    with Gateway() as g:
        yield g


@pytest.fixture
def mailbox():
    with Mailbox() as m:
        yield m


@pytest.fixture
def org(demo):
    """The demo organisation and users (units and users exist to carry contacts)."""
    return demo


def admin():
    from cli.outbox import _admin

    return _admin()


def dispatcher(rt, gateway, mailbox=None, **extra) -> Dispatcher:
    config = channel_config(gateway, mailbox, OUTBOX_BACKOFF_SECONDS="30", **extra)
    return Dispatcher(rt, build_channels(config), Settings.from_config(config), worker="test")


def queue(rt, kind="arrival", recipient_kind="unit", recipient=UNIT, params=None, channel="auto") -> int:
    params = dict(ARRIVAL if params is None else params)
    text = load_templates(rt.processes_dir).render(kind, params).text
    with rt.db.write() as s:
        row = Outbox(case_id=None, channel=channel, recipient_kind=recipient_kind, recipient=recipient, message=text,
                     kind=kind, params=params, status="pending", created_at=clock_mod.now())
        s.add(row)
        s.flush()
        return row.id


def row(rt, row_id) -> Outbox:
    with rt.db.read() as s:
        found = s.get(Outbox, row_id)
        s.expunge(found)
        return found


# -- each channel delivers ----------------------------------------------------------------


def test_sms_goes_to_the_gateway_signed_in_the_aliyun_format(rt, org, gateway):
    set_contact(rt, "unit", UNIT, phone="13900001111")
    mid = queue(rt)
    assert dispatcher(rt, gateway).run_until_idle() == {"sent": 1}
    [req] = gateway.sms()
    form = req["form"]
    assert req["signature_ok"]
    assert form["Action"] == "SendSms" and form["Version"] == "2017-05-25"
    assert form["PhoneNumbers"] == "13900001111" and form["SignName"] == "矛盾联调"
    assert form["TemplateCode"] == "SMS_DISPUTE_ARRIVAL"
    assert json.loads(form["TemplateParam"]) == ARRIVAL
    m = row(rt, mid)
    assert form["OutId"] == m.idempotency_key
    assert (m.status, m.attempts, m.channel, m.address, m.provider_ref) == ("sent", 1, "sms", "13900001111", "biz-1")
    assert m.sent_at == clock_mod.now()


def test_email_goes_over_smtp_with_a_message_id_from_the_key(rt, org, gateway, mailbox):
    set_contact(rt, "user", "cgj_handler", email="handler@cgj.example.cn", phone="13900002222",
                notify_channel="email")
    mid = queue(rt, "yellow", "user", "cgj_handler", {"case_no": "2025-000009", "step": "签收", "due": "03月04日17:30"})
    assert dispatcher(rt, gateway, mailbox).run_until_idle() == {"sent": 1}
    [msg] = mailbox.messages
    key = row(rt, mid).idempotency_key
    assert msg["Message-ID"] == f"<{key}@dispute.example.cn>" and msg["X-Idempotency-Key"] == key
    assert msg["To"] == "handler@cgj.example.cn" and msg["Subject"] == "黄灯预警：2025-000009"
    assert "案件2025-000009「签收」即将到期（03月04日17:30）" in msg.get_content()
    assert gateway.sms() == []  # the preferred channel, not the first one known


def test_webhook_posts_signed_json_with_the_idempotency_key(rt, org, gateway):
    set_contact(rt, "unit", UNIT, webhook_url=f"{gateway.url}/hooks/cgj", webhook_secret="s3cret",
                phone="13900001111", notify_channel="webhook")
    mid = queue(rt)
    assert dispatcher(rt, gateway).run_until_idle() == {"sent": 1}
    [hook] = gateway.hooks()
    key = row(rt, mid).idempotency_key
    assert hook["path"] == "/hooks/cgj" and webhook_signature_ok(hook, "s3cret")
    assert not webhook_signature_ok(hook, "another secret")
    assert hook["headers"]["Idempotency-Key"] == key and hook["json"]["id"] == key
    assert hook["json"]["kind"] == "arrival" and hook["json"]["params"] == ARRIVAL
    assert "已派送宜昌市城市管理执法局" in hook["json"]["text"]


# -- failure, retry, dead letter ---------------------------------------------------------------


def test_a_failed_sms_is_tried_again_with_backoff_and_the_same_key(rt, org, gateway, clock):
    set_contact(rt, "unit", UNIT, phone="13900001111")
    mid = queue(rt)
    gateway.plan = [500, "timeout"]
    d = dispatcher(rt, gateway)
    assert d.run_until_idle() == {"failed": 1}
    m = row(rt, mid)
    assert (m.status, m.attempts, m.next_attempt_at) == ("failed", 1, clock.now() + timedelta(seconds=30))
    assert "HTTP 500" in m.last_error
    assert d.run_until_idle() == {"failed": 1}  # not due yet: nothing happens
    clock.advance(seconds=30)
    d.run_until_idle()
    m = row(rt, mid)
    assert (m.status, m.attempts, m.next_attempt_at) == ("failed", 2, clock.now() + timedelta(seconds=60))
    assert "no answer" in m.last_error
    clock.advance(seconds=60)
    assert d.run_until_idle() == {"failed": 2, "sent": 1}
    assert row(rt, mid).status == "sent"
    assert {r["form"]["OutId"] for r in gateway.sms()} == {m.idempotency_key}
    assert len(gateway.sms()) == 3


def test_after_the_last_attempt_the_message_is_dead_until_an_administrator_retries(rt, org, gateway, clock):
    set_contact(rt, "unit", UNIT, phone="13900001111")
    mid = queue(rt)
    gateway.default = 500
    d = dispatcher(rt, gateway, OUTBOX_MAX_ATTEMPTS="3")
    for _ in range(3):
        d.run_until_idle()
        clock.advance(hours=1)
    m = row(rt, mid)
    assert (m.status, m.attempts, m.next_attempt_at) == ("dead", 3, None)
    assert "HTTP 500" in m.last_error
    d.run_until_idle()
    assert len(gateway.sms()) == 3  # a dead message is not claimed
    gateway.default = "ok"
    assert retry_message(rt, mid, admin())["status"] == "pending"
    d.run_until_idle()
    m = row(rt, mid)
    assert (m.status, m.attempts) == ("sent", 1)
    assert {r["form"]["OutId"] for r in gateway.sms()} == {m.idempotency_key}


def test_a_permanent_refusal_is_dead_at_once(rt, org, gateway):
    set_contact(rt, "unit", UNIT, phone="13900001111")
    mid = queue(rt)
    gateway.plan = ["isv.MOBILE_NUMBER_ILLEGAL"]
    assert dispatcher(rt, gateway).run_until_idle() == {"dead": 1}
    m = row(rt, mid)
    assert (m.status, m.attempts) == ("dead", 1) and "isv.MOBILE_NUMBER_ILLEGAL" in m.last_error


def test_smtp_refusals_retry_on_4xx_and_die_on_5xx(rt, org, gateway, mailbox):
    set_contact(rt, "user", "cgj_handler", email="busy@cgj.example.cn")
    set_contact(rt, "user", "cgj_handler2", email="gone@cgj.example.cn")
    busy = queue(rt, "notice", "user", "cgj_handler", {"text": "测试"})
    gone = queue(rt, "notice", "user", "cgj_handler2", {"text": "测试"})
    mailbox.refuse = {"busy@cgj.example.cn": (451, "try later"), "gone@cgj.example.cn": (550, "no such user")}
    assert dispatcher(rt, gateway, mailbox).run_until_idle() == {"failed": 1, "dead": 1}
    assert row(rt, busy).status == "failed" and "451" in row(rt, busy).last_error
    assert row(rt, gone).status == "dead" and "550" in row(rt, gone).last_error
    assert mailbox.messages == []


def test_a_webhook_answering_500_is_retried_and_a_404_is_dead(rt, org, gateway, clock):
    set_contact(rt, "unit", UNIT, webhook_url=f"{gateway.url}/hooks/a", webhook_secret="k1")
    set_contact(rt, "unit", LEADER_UNIT, webhook_url="http://127.0.0.1:9/nothing-listens", webhook_secret="k2")
    ok_later = queue(rt)
    unreachable = queue(rt, recipient=LEADER_UNIT)
    gateway.plan = [500]
    d = dispatcher(rt, gateway)
    assert d.run_until_idle() == {"failed": 2}
    assert "cannot reach" in row(rt, unreachable).last_error
    clock.advance(seconds=30)
    d.run_until_idle()
    assert row(rt, ok_later).status == "sent"
    assert [h["headers"]["Idempotency-Key"] for h in gateway.hooks()] == [row(rt, ok_later).idempotency_key] * 2


def test_a_recipient_without_a_contact_is_a_dead_letter_naming_it(rt, org, gateway):
    mid = queue(rt, recipient="YC-ZJJ")
    assert dispatcher(rt, gateway).run_until_idle() == {"dead": 1}
    assert "unit 'YC-ZJJ' has no contact" in row(rt, mid).last_error


# -- quiet hours --------------------------------------------------------------------------------


def test_citizen_sms_wait_for_the_end_of_quiet_hours_but_red_lights_to_staff_do_not(rt, org, gateway, clock):
    clock.set(datetime(2025, 3, 3, 15, 30, tzinfo=timezone.utc))  # 23:30 in Shanghai
    set_contact(rt, "unit", LEADER_UNIT, phone="13900003333")
    citizen = queue(rt, "citizen_reply", "citizen", "13812345678", {"case_no": "2025-000001", "reply": "已修复"})
    red = queue(rt, "red", "leader", LEADER_UNIT, {"case_no": "2025-000001", "step": "办理"})
    d = dispatcher(rt, gateway, OUTBOX_QUIET_HOURS="22:00-08:00")
    assert d.run_until_idle() == {"sent": 1}
    assert row(rt, red).status == "sent"
    m = row(rt, citizen)
    assert (m.status, m.attempts) == ("pending", 0)
    assert m.next_attempt_at == datetime(2025, 3, 4, 0, 0, tzinfo=timezone.utc)  # 08:00 in Shanghai
    clock.set(datetime(2025, 3, 3, 23, 59, tzinfo=timezone.utc))
    d.run_until_idle()
    assert row(rt, citizen).status == "pending"
    clock.set(datetime(2025, 3, 4, 0, 0, tzinfo=timezone.utc))
    d.run_until_idle()
    assert row(rt, citizen).status == "sent"
    assert [r["form"]["PhoneNumbers"] for r in gateway.sms()] == ["13900003333", "13812345678"]


# -- crash between sending and recording; several dispatchers ------------------------------------------


def test_a_dispatcher_that_dies_after_sending_is_taken_over_with_the_same_key(rt, org, gateway, clock):
    set_contact(rt, "unit", UNIT, phone="13900001111")
    mid = queue(rt)
    first = dispatcher(rt, gateway, OUTBOX_LEASE_SECONDS="60")
    [(row_id, delivery, problem)] = first.claim()
    first.channels[delivery.channel].send(delivery)  # sent ... and the worker dies before recording
    second = Dispatcher(rt, first.channels, first.settings, worker="second")
    assert second.run_until_idle() == {} and row(rt, mid).status == "sending"  # the lease holds
    clock.advance(seconds=61)
    assert second.run_until_idle() == {"sent": 1}
    assert first.record(row_id, "late", None) == "lost_lease"
    m = row(rt, mid)
    assert (m.status, m.attempts, m.lease_owner) == ("sent", 2, None)
    assert [r["form"]["OutId"] for r in gateway.sms()] == [m.idempotency_key] * 2


def test_two_dispatchers_deliver_each_message_once(rt, org, gateway):
    set_contact(rt, "unit", UNIT, phone="13900001111")
    ids = [queue(rt) for _ in range(40)]
    gateway.default = "slow"
    gateway.slow_seconds = 0.01
    workers = [dispatcher(rt, gateway, OUTBOX_BATCH="5") for _ in range(2)]
    workers[1].worker = "test-2"
    threads = [threading.Thread(target=w.run_until_idle) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    keys = Counter(r["form"]["OutId"] for r in gateway.sms())
    with rt.db.read() as s:
        rows = s.execute(select(Outbox.status, Outbox.idempotency_key).where(Outbox.id.in_(ids))).all()
    assert {status for status, _ in rows} == {"sent"}
    assert keys == Counter({key: 1 for _, key in rows})


def test_outcomes_recorded_together_each_take_their_own_course(rt, org, gateway, clock):
    set_contact(rt, "unit", UNIT, phone="13900001111")
    ids = [queue(rt) for _ in range(4)]
    d = dispatcher(rt, gateway, OUTBOX_MAX_ATTEMPTS="3")
    assert [row_id for row_id, _, _ in d.claim()] == ids
    with rt.db.write() as s:  # the last one's lease expired and another worker took it
        s.get(Outbox, ids[3]).lease_owner = "other"
    assert d.record_many([(ids[0], "ref-0", None), (ids[1], None, "HTTP 500", False),
                          (ids[2], None, "isv.MOBILE_NUMBER_ILLEGAL", True), (ids[3], "ref-3", None)]) == \
        ["sent", "failed", "dead", "lost_lease"]
    sent, failed, dead, taken = (row(rt, i) for i in ids)
    assert (sent.status, sent.provider_ref, sent.lease_owner) == ("sent", "ref-0", None)
    assert (failed.status, failed.last_error) == ("failed", "HTTP 500")
    assert failed.next_attempt_at.replace(tzinfo=timezone.utc) == clock.now() + timedelta(seconds=30)
    assert dead.status == "dead" and "MOBILE_NUMBER_ILLEGAL" in dead.last_error
    assert (taken.status, taken.lease_owner) == ("sending", "other")
    assert d.outcomes == {"sent": 1, "failed": 1, "dead": 1, "lost_lease": 1}


def test_outcomes_that_arrive_together_share_one_record_transaction(rt, org, gateway):
    set_contact(rt, "unit", UNIT, phone="13900001111")
    ids = [queue(rt) for _ in range(20)]
    gateway.default, gateway.timeout_seconds = "hold", 30  # answered together, once all 20 are in
    d = dispatcher(rt, gateway, OUTBOX_BATCH="20", OUTBOX_SEND_THREADS="20")
    groups = []
    record_many = d.record_many
    d.record_many = lambda outcomes: groups.append(len(outcomes)) or record_many(outcomes)
    worker = threading.Thread(target=d.run_until_idle)
    worker.start()
    deadline = time.monotonic() + 30
    while len(gateway.received) < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    gateway.release.set()
    worker.join(60)
    assert d.outcomes == {"sent": 20}
    assert sum(groups) == 20 and len(groups) <= 4, groups  # one transaction per message before
    with rt.db.read() as s:
        assert set(s.scalars(select(Outbox.status).where(Outbox.id.in_(ids)))) == {"sent"}


# -- the notifications of a real case -----------------------------------------------------------------


def test_a_case_walked_through_the_procedure_has_its_notifications_delivered(rt, org, gateway, mailbox):
    set_contact(rt, "unit", UNIT, phone="13900001111")
    set_contact(rt, "unit", "XL-XLJD-YJP", email="yjp@xiling.example.cn")
    Driver.start(rt).happy_path()
    assert dispatcher(rt, gateway, mailbox).run_until_idle() == {"sent": 4}
    sms = {(r["form"]["PhoneNumbers"], r["form"]["TemplateCode"]): r["form"] for r in gateway.sms()}
    assert set(sms) == {("13900001111", "SMS_DISPUTE_ARRIVAL"), ("13812345678", "SMS_DISPUTE_TRACKING"),
                        ("13812345678", "SMS_DISPUTE_CITIZEN_REPLY")}
    assert json.loads(sms["13812345678", "SMS_DISPUTE_CITIZEN_REPLY"]["TemplateParam"])["reply"]
    assert len(json.loads(sms["13812345678", "SMS_DISPUTE_TRACKING"]["TemplateParam"])["tracking_code"]) >= 10
    [mail] = mailbox.messages
    assert mail["To"] == "yjp@xiling.example.cn" and "请向当事人回告" in mail.get_content()


def test_the_timer_service_runs_the_dispatcher_embedded(rt, org, gateway):
    from timers import TimerService

    set_contact(rt, "unit", UNIT, phone="13900001111")
    mid = queue(rt)
    service = TimerService(rt, outbox=dispatcher(rt, gateway)).start()
    try:
        deadline = time.monotonic() + 30
        while row(rt, mid).status != "sent" and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        service.stop()
    assert row(rt, mid).status == "sent" and len(gateway.sms()) == 1


def test_a_message_whose_dispatcher_dies_every_time_ends_as_a_dead_letter(rt, org, gateway, clock):
    set_contact(rt, "unit", UNIT, phone="13900001111")
    mid = queue(rt)
    for attempt in range(3):
        doomed = dispatcher(rt, gateway, OUTBOX_MAX_ATTEMPTS="3", OUTBOX_LEASE_SECONDS="10")
        doomed.worker = f"doomed-{attempt}"
        assert len(doomed.claim()) == 1  # ... and dies before sending or recording
        clock.advance(seconds=11)
    assert dispatcher(rt, gateway, OUTBOX_MAX_ATTEMPTS="3").run_until_idle() == {}
    m = row(rt, mid)
    assert (m.status, m.attempts) == ("dead", 3) and "died each time" in m.last_error
    assert gateway.sms() == []
