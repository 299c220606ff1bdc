"""Scale-out as users would run it, on PostgreSQL: two API processes (`flask serve --no-timers`, gunicorn
workers each) and two timer workers (`flask timers run`), all real processes started here.

Cases are driven over HTTP through both API processes while the timer workers fire the overdue timers of
the very cases being driven (sign-for deadlines long past by the real clock): every case reaches
`closed`, every answer is 2xx, no timer fires twice, none is left, and `flask audit verify --all` is clean.
"""
from __future__ import annotations

import itertools
import threading
from collections import Counter

import pytest
import requests
from sqlalchemy import func, select

from engine.services import cases
from engine.store.models import Case, CaseEvent
from engine.store.timer_models import CaseTimer
from tests.api_support import STEPS, intake_body
from tests.servers import Process, free_port, poll
from tests.support import Driver

pytestmark = pytest.mark.slow
OVERDUE_CASES, DRIVEN_OVERDUE, NEW_CASES, CLIENTS = 120, 60, 30, 8


def test_two_api_processes_and_two_timer_workers_lose_nothing_and_double_nothing(rt, db_url, demo, tmp_path):
    if db_url.startswith("sqlite"):
        pytest.skip("several writer processes at scale are PostgreSQL's case; SQLite serves one machine")
    # cases waiting for sign-for since the test clock's Monday in 2025: their timers are long due
    overdue = []
    for _ in range(OVERDUE_CASES):
        d = Driver.start(rt)
        overdue.append(cases.complete_task(rt, d.open["id"], {"mediation_result": "unresolved"}, "acceptor"))
    with rt.db.read() as s:
        assert s.scalar(select(func.count()).select_from(CaseTimer)) == 2 * OVERDUE_CASES

    env = {"DATABASE_URL": db_url, "LOG_LEVEL": "WARNING"}
    procs: list[Process] = []
    bases = []
    try:
        for i in range(2):
            port = free_port()
            procs.append(Process(["serve", "--no-timers", "--workers", "2", "--threads", "4", "--port", str(port)],
                                 env, tmp_path / f"api-{i}.log"))
            bases.append(f"http://127.0.0.1:{port}")
        for base, proc in zip(bases, procs):
            poll(lambda: proc.alive() and requests.get(f"{base}/healthz", timeout=5).ok, 120, f"{base} to answer")
        timer_workers = [Process(["timers", "run", "--worker", f"w{i}"], env, tmp_path / f"timers-{i}.log")
                         for i in range(2)]
        procs += timer_workers
        for base in bases:
            poll(lambda: requests.get(f"{base}/readyz", timeout=5).status_code == 200, 60, "readyz with timers")

        work = [("overdue", c["case_no"]) for c in overdue[:DRIVEN_OVERDUE]] + [("new", None)] * NEW_CASES
        queue = iter(work)
        take = threading.Lock()
        problems, closed = [], []
        servers = itertools.cycle(bases)

        def call(session, base, method, path, user, body=None):
            resp = session.request(method, f"{base}/api/v1{path}", json=body, timeout=60,
                                   headers={"Authorization": f"Bearer {demo[user]}"})
            if resp.status_code // 100 != 2:
                problems.append(f"{method} {path} {resp.status_code} {resp.text[:300]}")
                return None
            return resp.json()

        def client(n):
            session = requests.Session()
            while True:
                with take:
                    item = next(queue, None)
                    base = next(servers)
                if item is None:
                    return
                kind, case_no = item
                if kind == "new":
                    case = call(session, base, "POST", "/cases", "yjp_acceptor", intake_body())
                    steps = ("mediate", "sign_for", "handle", "approve", "evaluate")
                else:
                    case = call(session, base, "GET", f"/cases/{case_no}", "jgzx_supervisor")
                    steps = ("sign_for", "handle", "approve", "evaluate")
                for element in steps:
                    if case is None:
                        return
                    task = [t for t in case["open_tasks"] if t["element"] == element]
                    if len(task) != 1:
                        problems.append(f"{case['case_no']}: expected one {element}, found {case['open_tasks']}")
                        return
                    user, data = STEPS[element]
                    base = next(servers)  # each step through either API process
                    case = call(session, base, "POST", f"/tasks/{task[0]['id']}/complete", user, {"data": data})
                if case is not None:
                    closed.append((case["case_no"], case["status"]))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
        assert not problems, problems[:5]
        assert len(closed) == DRIVEN_OVERDUE + NEW_CASES and {s for _, s in closed} == {"closed"}

        def timers_left():
            with rt.db.read() as s:
                return s.scalar(select(func.count()).select_from(CaseTimer))

        poll(lambda: timers_left() == 0, 180, "every due timer fired or cancelled")
        for w in timer_workers:
            assert w.alive(), w.output()
    finally:
        codes = [p.stop() for p in procs]
        for p in procs:
            print(p.log_path.name, p.output()[-1500:])
    assert codes == [0, 0, 0, 0], codes

    with rt.db.read() as s:
        fired = Counter(s.scalars(select(CaseEvent.task_id).where(CaseEvent.type == "timer_fired")).all())
        statuses = Counter(s.scalars(select(Case.status)).all())
    assert fired and set(fired.values()) == {1}, "a timer fired twice"
    # every timer of an undriven case fired (both its warning and its deadline); the driven ones fired or
    # were cancelled when their task completed
    assert sum(fired.values()) >= 2 * (OVERDUE_CASES - DRIVEN_OVERDUE)
    assert statuses["closed"] == DRIVEN_OVERDUE + NEW_CASES and statuses["signing"] == OVERDUE_CASES - DRIVEN_OVERDUE
    audit = Process(["audit", "verify", "--all"], {"DATABASE_URL": db_url}, tmp_path / "audit.log")
    assert audit.proc.wait(timeout=300) == 0, audit.output()
    audit.stop()
    assert f"{OVERDUE_CASES + NEW_CASES} case(s) verified" in audit.output() and ", 0 failed" in audit.output()
