"""Citizens' tracking by a random code: issued once at intake, sent to the reporter, stored only as a hash.

Observed on main before this: `GET /track/{case_no}?phone_last4=` answered
200 wrong guesses in 1.6 s, all 404, with no limit, and as case numbers are
sequential one phone suffix opened 61 of 200 cases. Now the case number and
phone open nothing; the code is 60 random bits and look-ups are rate-limited
(tests/test_rate_limits.py).
"""
from __future__ import annotations

import re

from sqlalchemy import select

from engine.rules.tracking_code import ALPHABET, LENGTH, canonical, code_hash
from engine.store.models import CaseEvent, Outbox
from engine.store.tracking_models import TrackingCode
from tests.api_support import PHONE

CODE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{12}$")  # Crockford base32: no I, L, O, U


def test_intake_issues_a_random_code_from_an_unambiguous_alphabet(api):
    codes = {api.register()["tracking_code"] for _ in range(5)}
    assert len(codes) == 5
    assert all(CODE.match(code) for code in codes), codes
    assert len(ALPHABET) == 32 and not set("ILOU") & set(ALPHABET) and LENGTH >= 10


def test_the_code_is_stored_only_as_a_hash_and_shown_only_once(api, rt):
    case = api.register()
    code, case_no = case["tracking_code"], case["case_no"]
    with rt.db.read() as s:
        hashes = s.scalars(select(TrackingCode.code_hash)).all()
        payloads = s.scalars(select(CaseEvent.payload)).all()
    assert hashes == [code_hash(code)] and code not in hashes[0]
    assert payloads and all(code not in repr(p) for p in payloads)
    for path in (f"/api/v1/cases/{case_no}", f"/api/v1/cases/{case_no}/events", "/api/v1/cases"):
        assert code not in api.get(path, "yjp_acceptor").get_data(as_text=True), path


def test_the_reporter_is_sent_the_code_in_the_case_transaction(api, rt):
    case = api.register()
    with rt.db.read() as s:
        sent = s.execute(select(Outbox.recipient, Outbox.status, Outbox.message)
                         .where(Outbox.recipient_kind == "citizen")).all()
    assert len(sent) == 1
    recipient, status, message = sent[0]
    assert recipient == PHONE and status == "pending"
    assert case["tracking_code"] in message and case["case_no"] in message


def test_the_code_opens_the_public_view_without_a_token_and_nothing_personal(api):
    case = api.register()
    api.step(case["case_no"], "mediate")
    resp = api.client.get(f"/api/v1/track/{case['tracking_code']}")
    assert resp.status_code == 200
    view = resp.get_json()
    assert view["case_no"] == case["case_no"] and view["status"] == "signing" and view["category_name"] == "城市管理"
    assert view["current_unit"] == {"code": "YC-CGJ", "name": "宜昌市城市管理局"}
    assert view["accepted_at"] and view["closed_at"] is None
    assert set(view) == {"case_no", "status", "category", "category_name", "current_unit", "handling_unit",
                         "accepted_at", "updated_at", "replied_at", "closed_at"}
    text = resp.get_data(as_text=True)
    for personal in (PHONE, "张三", "420502", "云集路12号", "楼上漏水"):
        assert personal not in text


def test_the_code_is_read_the_way_a_citizen_types_it(api):
    code = api.register()["tracking_code"]
    typed = f"{code[:4].lower()}-{code[4:8]} {code[8:]}".replace("1", "l").replace("0", "o")
    assert canonical(typed) == code
    assert api.client.get(f"/api/v1/track/{typed}").status_code == 200


def test_case_numbers_and_phone_suffixes_open_nothing(api):
    case_no = api.register()["case_no"]
    for path in (f"/api/v1/track/{case_no}?phone_last4={PHONE[-4:]}", f"/api/v1/track/{case_no}",
                 "/api/v1/track/0000000000000", "/api/v1/track/ZZZZZZZZZZZZ", "/api/v1/track/%E4%B8%AD"):
        resp = api.client.get(path)
        assert resp.status_code == 404, path
        assert resp.get_json() == {"code": "case_not_found", "message": "no case has this tracking code",
                                   "errors": {}}


def test_tracking_a_closed_case(api):
    case = api.register()
    api.drive(case["case_no"], "mediate", "sign_for", "handle", "approve", "evaluate")
    view = api.client.get(f"/api/v1/track/{case['tracking_code']}").get_json()
    assert view["status"] == "closed" and view["closed_at"] and view["replied_at"] and view["current_unit"] is None
    assert view["handling_unit"]["code"] == "YC-CGJ"
