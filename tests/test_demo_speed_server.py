"""`flask demo --speed 3600` in a real server process: one real second is one hour of the instance's time.

A case's sign-for step turns yellow, then red, and a supervision record opens,
within a bounded number of real seconds (polled with a timeout, never a fixed
sleep); every response's X-Clock advances 3600 times faster than real time.
"""
from __future__ import annotations

import time
from datetime import datetime

import pytest
import requests

from tests.api_support import STEPS, intake_body
from tests.servers import Process, free_port, poll

SPEED = 3600
pytestmark = pytest.mark.slow


@pytest.fixture
def demo_server(db_url, tmp_path):
    port = free_port()
    token_file = tmp_path / "demo_tokens.tsv"
    env = {"DATABASE_URL": db_url, "DEMO_TOKEN_FILE": str(token_file), "LOG_LEVEL": "WARNING"}
    server = Process(["demo", "--speed", str(SPEED), "--port", str(port)], env, tmp_path / "server.log")
    base = f"http://127.0.0.1:{port}"
    try:
        poll(lambda: server.alive() and requests.get(f"{base}/healthz", timeout=5).ok, 120,
             "the demo server to answer")
        tokens = dict(line.split("\t") for line in token_file.read_text().splitlines())
        yield base, tokens
    finally:
        server.stop(timeout=30)
        print(server.output()[-3000:])  # shown when the test fails


def test_a_demo_at_3600x_turns_lights_and_opens_supervision_within_seconds(demo_server):
    base, tokens = demo_server
    api = f"{base}/api/v1"

    def call(method, path, user, body=None):
        resp = requests.request(method, f"{api}{path}", json=body, timeout=30,
                                headers={"Authorization": f"Bearer {tokens[user]}"})
        return resp

    # the instance's time runs 3600x real time, on every response
    health = requests.get(f"{base}/healthz", timeout=10).json()
    assert health["clock_speed"] == SPEED and health["purpose"] == "demo"
    a1 = time.monotonic()
    first = requests.get(f"{base}/healthz", timeout=10)
    b1 = time.monotonic()
    time.sleep(1.0)  # the measured interval, not a wait for an outcome
    a2 = time.monotonic()
    second = call("GET", "/me", "yjp_acceptor")
    b2 = time.monotonic()
    assert first.headers["X-Clock-Speed"] == second.headers["X-Clock-Speed"] == str(SPEED)
    advanced = (datetime.fromisoformat(second.headers["X-Clock"])
                - datetime.fromisoformat(first.headers["X-Clock"])).total_seconds()
    assert SPEED * (a2 - b1) - 1 <= advanced <= SPEED * (b2 - a1) + 1, advanced

    case = call("POST", "/cases", "yjp_acceptor", intake_body()).json()
    case_no = case["case_no"]
    mediate = case["open_tasks"][0]["id"]
    user, data = STEPS["mediate"]
    assert call("POST", f"/tasks/{mediate}/complete", user, {"data": data}).status_code == 200
    task = call("GET", f"/cases/{case_no}", "jgzx_supervisor").json()["open_tasks"][0]
    assert task["element"] == "sign_for"
    due = datetime.fromisoformat(task["due_at"])
    started = time.monotonic()
    # a working day and a half at most on the instance's clock (more over a weekend): tens of real seconds
    bound = (due - datetime.fromisoformat(task["created_at"])).total_seconds() / SPEED + 30

    def light():
        return call("GET", f"/tasks/{task['id']}", "cgj_handler").json()["light"]

    if task["light"] == "green":
        poll(lambda: light() in ("yellow", "red"), bound, "the sign-for step to turn yellow")
        assert light() in ("yellow", "red")
    poll(lambda: light() == "red", bound, "the sign-for step to turn red")

    def supervision():
        items = call("GET", f"/supervision/overdue?case={case_no}", "jgzx_supervisor").json()["items"]
        return [r for r in items if r["step"] == "sign_for" and r["status"] == "open"]

    records = poll(supervision, 30, "a supervision record to open")
    assert records[0]["unit"] == "YC-CGJ"
    assert time.monotonic() - started < bound + 30
    case = call("GET", f"/cases/{case_no}", "jgzx_supervisor").json()
    assert case["overdue"] is True and case["light"] == "red"
    events = call("GET", f"/cases/{case_no}/events", "auditor").json()
    fired = [e["payload"] for e in events if e["type"] == "timer_fired"]
    assert [p["kind"] for p in fired][-1] == "due"
    # fired at its instant on the instance's clock: never before, at most a few real seconds' worth after
    late = (datetime.fromisoformat(fired[-1]["fired_at"]) - datetime.fromisoformat(fired[-1]["due_at"]))
    assert 0 <= late.total_seconds() < 10 * SPEED
