"""Two real HTTP clients claim one task at the same instant: exactly one 200 and one 409, fifty times over.

The app runs in a real threaded WSGI server on 127.0.0.1 (an ephemeral
port); two `requests` sessions, one per handler of the routed unit, are
released together by a barrier for each of 50 fresh tasks.
"""
from __future__ import annotations

import threading

import pytest
import requests
from sqlalchemy import select
from werkzeug.serving import make_server

from engine.services import cases
from engine.store.models import CaseTask
from tests.support import intake

ROUNDS = 50
CLAIMERS = ("cgj_handler", "cgj_handler2")


@pytest.fixture
def server(app):
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, name="api-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    thread.join(timeout=10)


def _sign_for_tasks(rt, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        case = cases.start_case(rt, intake(), "yjp_acceptor")
        case = cases.complete_task(rt, case["open_tasks"][0]["id"], {"mediation_result": "unresolved"},
                                   "yjp_acceptor")
        ids.append(case["open_tasks"][0]["id"])
    return ids


@pytest.mark.slow
def test_two_clients_claiming_one_task_at_the_same_instant(server, rt, demo):
    task_ids = _sign_for_tasks(rt, ROUNDS)
    sessions = []
    for user in CLAIMERS:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {demo[user]}"
        assert session.get(f"{server}/api/v1/me", timeout=30).json()["username"] == user  # connect, warm up
        sessions.append(session)
    try:
        winners = []
        for task_id in task_ids:
            barrier = threading.Barrier(len(sessions))
            results: list = [None] * len(sessions)

            def claim(i: int) -> None:
                barrier.wait()
                results[i] = sessions[i].post(f"{server}/api/v1/tasks/{task_id}/claim", timeout=60)

            threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(sessions))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            statuses = [r.status_code for r in results]
            assert sorted(statuses) == [200, 409], [r.text for r in results]
            winner = CLAIMERS[statuses.index(200)]
            loser = results[statuses.index(409)].json()
            assert loser["code"] == "task_claimed" and loser["assignee"] == winner
            winners.append(winner)
    finally:
        for session in sessions:
            session.close()
    with rt.db.read() as s:
        assignees = dict(s.execute(select(CaseTask.id, CaseTask.assignee).where(CaseTask.id.in_(task_ids))).all())
    assert [assignees[t] for t in task_ids] == winners
    events = [e for t in task_ids[:1] for e in cases.case_events(rt, cases.get_task(rt, t)["case_no"])
              if e["type"] == "task_claimed"]
    assert [e["actor"] for e in events] == winners[:1]  # the loser left no trace
