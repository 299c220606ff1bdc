"""One error body everywhere, and bad input never a 500 nor a change to any case."""
from __future__ import annotations

import pytest

from tests.api_support import intake_body

NESTED = "[" * 50_000 + "]" * 50_000
BAD_BODIES = [
    ("malformed", '{"title": "漏水",', 400),
    ("huge number", '{"title": ' + "9" * 5000 + "}", 400),
    ("deep nesting", NESTED, 400),
    ("nested beyond any request", '{"title": ' + "[" * 40 + "]" * 40 + "}", 400),
    ("invalid utf-8", b'{"title": "\xff\xfe"}', 400),
    ("lone surrogate", '{"title": "\\ud800"}', 422),
    ("NaN", '{"location": {"address": "x", "lat": NaN}}', 422),
    ("not an object", '"text"', 422),
]


@pytest.mark.parametrize("name, body, status", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_bodies_are_4xx_with_the_error_body(api, name, body, status):
    case_no, task = api.at_signing()
    before = api.case(case_no)
    for path in ("/api/v1/cases", f"/api/v1/tasks/{task['id']}/complete", f"/api/v1/cases/{case_no}/comments",
                 f"/api/v1/tasks/{task['id']}/delegate"):
        resp = api.client.post(path, data=body, content_type="application/json",
                               headers=api.headers("cgj_dispatcher" if "tasks" in path else "yjp_acceptor"))
        assert resp.status_code == status, (path, resp.get_json())
        assert set(resp.get_json()) == {"code", "message", "errors"}
    assert api.case(case_no) == before
    assert api.get("/api/v1/cases", "auditor").get_json()["total"] == 1


def test_unstorable_text_and_out_of_range_values_are_422(api):
    for params, field in (({"q": "\x00"}, "q"), ({"unit": "a\x00"}, "unit"),
                          ({"created_from": "0001-01-01T00:00:00+14:00"}, "created_from"),
                          ({"created_to": "9999-12-31T23:59:59-14:00"}, "created_to"),
                          ({"page": 10 ** 30}, "page")):
        resp = api.get("/api/v1/cases", "auditor", query_string=params)
        assert resp.status_code == 422 and field in resp.get_json()["errors"], params
    resp = api.post("/api/v1/cases", "yjp_acceptor", intake_body(reporter={"name": "张\x00三", "phone": "13812345678"}))
    assert resp.status_code == 422 and "reporter" in resp.get_json()["errors"]


def test_unknown_things_are_404_and_wrong_methods_405(api):
    for path in ("/api/v1/cases/%00", "/api/v1/cases/2025-000001", "/api/v1/tasks/%00", "/api/v1/nothing",
                 "/api/v1/processes/%00/versions/1/bpmn"):
        resp = api.get(path, "auditor")
        assert resp.status_code == 404 and set(resp.get_json()) >= {"code", "message", "errors"}, path
    resp = api.client.delete("/api/v1/cases", headers=api.headers("auditor"))
    assert resp.status_code == 405 and resp.get_json()["code"] == "method_not_allowed"
    assert "GET" in resp.headers["Allow"]
