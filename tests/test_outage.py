"""The database goes away under load: 503 with Retry-After, never a 500; recovery without a restart.

A real server (`flask serve --no-timers` in a subprocess) and four real HTTP
clients registering cases and completing their tasks, retrying on 503 (two
with an Idempotency-Key on every request, two without on their
completions), while the test cuts the database off a few times: on
PostgreSQL by terminating the server's sessions (`pg_terminate_backend` on
its `application_name` only, again and again for a moment), on SQLite by
holding the write lock from another connection past the server's busy
timeout. Then: only 200/201/409/503 were seen, every 503 with Retry-After;
the same server process answers again; every completion a client saw
acknowledged is in the log exactly once, every keyed intake made one case;
`flask audit verify --all` is clean. The same for a timer worker: none of its
firings lost, none doubled. And the small cases: connection refused, and
SQLite locked past its timeout, each a 503.
"""
from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from sqlalchemy import func, select

from engine.store.db import is_unavailable
from engine.store.models import Case, CaseEvent
from tests.api_support import intake_body
from tests.conftest import PG_BASE
from tests.test_timer_workers import cases_at_sign_for, firings, stop, timers_left, wait_until

ROOT = Path(__file__).resolve().parents[1]
RETRY_AFTER = 1
OK = {200, 201, 409, 503}


# -- cutting the database off ------------------------------------------------------------

class Outage:
    """Cuts the server's database off for `seconds`: PostgreSQL sessions killed, or SQLite write-locked."""

    def __init__(self, db_url: str):
        self.db_url = db_url
        self.is_sqlite = db_url.startswith("sqlite")
        self.app_name = f"outage_{uuid.uuid4().hex[:8]}"
        self.killed = 0
        self._admin = None if self.is_sqlite else sa.create_engine(PG_BASE)

    @property
    def server_url(self) -> str:
        return self.db_url if self.is_sqlite else f"{self.db_url}&application_name={self.app_name}"

    def env(self) -> dict:
        return dict(os.environ, DATABASE_URL=self.server_url, LOG_LEVEL="WARNING", SQLITE_BUSY_TIMEOUT="0.3",
                    DATABASE_RETRY_AFTER=str(RETRY_AFTER), TIMER_LEASE_SECONDS="3")

    def cut(self, seconds: float) -> None:
        if self.is_sqlite:
            conn = sqlite3.connect(self.db_url.removeprefix("sqlite:///"), isolation_level=None, timeout=30)
            conn.execute("BEGIN EXCLUSIVE")
            time.sleep(seconds)
            conn.execute("ROLLBACK")
            conn.close()
            return
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            with self._admin.connect() as conn:
                self.killed += conn.execute(sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = :n AND pid <> pg_backend_pid()"), {"n": self.app_name}).scalar()
            time.sleep(0.05)

    def close(self) -> None:
        if self._admin is not None:
            self._admin.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(outage: Outage, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "serve", "--no-timers", "--port", str(port)],
                            cwd=ROOT, env=outage.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited: {proc.stderr.read()}")
        try:
            if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                return proc
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise AssertionError("the server did not start")


# -- the clients -----------------------------------------------------------------------------

class Client(threading.Thread):
    """Registers cases and completes mediate and sign_for, retrying each request on 503 until it is answered."""

    def __init__(self, base: str, tokens: dict, keyed: bool, stopping: threading.Event):
        super().__init__(daemon=True)
        self.base, self.keyed, self.stopping = base, keyed, stopping
        self.sessions = {user: requests.Session() for user in ("yjp_acceptor", "cgj_handler")}
        for user, s in self.sessions.items():
            s.headers["Authorization"] = f"Bearer {tokens[user]}"
        self.statuses: Counter = Counter()
        self.bad: list = []
        self.intakes: dict[str, str] = {}  # idempotency key -> case number
        self.acknowledged: list[str] = []  # task ids completed with a 200
        self.confirmed: list[str] = []  # task ids whose retry was a 409 after a 503 (the first went through)

    def request(self, user: str, method: str, path: str, body=None, key: str | None = None):
        headers = {"Idempotency-Key": key} if key else {}
        retried = False
        while True:
            resp = self.sessions[user].request(method, self.base + path, json=body, headers=headers, timeout=60)
            self.statuses[resp.status_code] += 1
            if resp.status_code not in OK or (resp.status_code == 503 and (
                    resp.headers.get("Retry-After") != str(RETRY_AFTER)
                    or resp.json().get("code") != "database_unavailable")):
                self.bad.append((resp.status_code, method, path, resp.text[:300]))
                return resp, retried
            busy = resp.status_code == 409 and resp.json().get("code") == "idempotency_in_progress"
            if resp.status_code != 503 and not busy:
                return resp, retried
            retried = True
            time.sleep(float(resp.headers["Retry-After"]))

    def complete(self, user: str, case_no: str, task_id: str, data: dict) -> dict | None:
        key = str(uuid.uuid4()) if self.keyed else None
        resp, retried = self.request(user, "POST", f"/api/v1/tasks/{task_id}/complete", {"data": data}, key)
        if resp.status_code == 200:
            self.acknowledged.append(task_id)
            return resp.json()
        if resp.status_code == 409 and retried and not self.keyed:
            self.confirmed.append(task_id)
            return self.request(user, "GET", f"/api/v1/cases/{case_no}")[0].json()
        if resp.status_code != 503:
            self.bad.append((resp.status_code, "complete", task_id, resp.text[:300]))
        return None

    def run(self) -> None:
        try:
            while not self.stopping.is_set() and not self.bad:
                key = str(uuid.uuid4())
                resp, _ = self.request("yjp_acceptor", "POST", "/api/v1/cases", intake_body(), key)
                if resp.status_code != 201:
                    self.bad.append((resp.status_code, "intake", key, resp.text[:300]))
                    return
                case = resp.json()
                self.intakes[key] = case["case_no"]
                case = self.complete("yjp_acceptor", case["case_no"], case["open_tasks"][0]["id"],
                                     {"mediation_result": "unresolved"})
                if case is None:
                    return
                self.complete("cgj_handler", case["case_no"], case["open_tasks"][0]["id"],
                              {"decision": "accept", "responsible_section": "执法一科", "responsible_person": "cgj_handler"})
        except Exception as exc:  # a dropped HTTP connection would be a failure too: keep it for the assertion
            self.bad.append(("exception", repr(exc)))
        finally:
            for s in self.sessions.values():
                s.close()


def completions_in_log(rt) -> Counter:
    with rt.db.read() as s:
        return Counter(s.scalars(select(CaseEvent.task_id).where(CaseEvent.type == "task_completed")).all())


def audit_verify(outage: Outage) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flask", "--app", "app", "audit", "verify", "--all"], cwd=ROOT,
                          env=dict(os.environ, DATABASE_URL=outage.db_url, LOG_LEVEL="WARNING"),
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_an_outage_under_load_is_503s_and_loses_or_doubles_nothing(rt, db_url, demo):
    outage = Outage(db_url)
    port = free_port()
    server = start_server(outage, port)
    stopping = threading.Event()
    clients = [Client(f"http://127.0.0.1:{port}", demo, keyed=i < 2, stopping=stopping) for i in range(4)]
    try:
        for c in clients:
            c.start()
        assert wait_until(lambda: sum(len(c.acknowledged) for c in clients) >= 12, 60), "no load"
        for _ in range(4):
            outage.cut(0.8)
            time.sleep(1.5)
        time.sleep(1.0)
        stopping.set()
        for c in clients:
            c.join(timeout=120)
        assert server.poll() is None, "the server died"
        assert requests.get(f"http://127.0.0.1:{port}/api/v1/cases", timeout=10,
                            headers={"Authorization": f"Bearer {demo['yjp_acceptor']}"}).status_code == 200
    finally:
        server.terminate()
        _, log = server.communicate(timeout=30)
        outage.close()
    statuses = sum((c.statuses for c in clients), Counter())
    acknowledged = [t for c in clients for t in c.acknowledged]
    confirmed = [t for c in clients for t in c.confirmed]
    in_log = completions_in_log(rt)
    with rt.db.read() as s:
        cases = s.scalar(select(func.count()).select_from(Case))
    print(f"\n[{db_url.split(':')[0]}] requests={sum(statuses.values())} statuses={dict(sorted(statuses.items()))} "
          f"sessions killed={outage.killed} completions acknowledged={len(acknowledged)} "
          f"confirmed by a 409 retry={len(confirmed)} completion events={sum(in_log.values())} "
          f"cases={cases} intakes acknowledged={sum(len(c.intakes) for c in clients)}")
    assert not [b for c in clients for b in c.bad], [b for c in clients for b in c.bad]
    assert set(statuses) <= OK and statuses[503] >= 1, statuses
    assert all(in_log[t] == 1 for t in acknowledged + confirmed), "an acknowledged completion is missing or doubled"
    assert sum(in_log.values()) == len(acknowledged) + len(confirmed) == len(set(acknowledged + confirmed))
    assert cases == sum(len(c.intakes) for c in clients), "a retried intake registered twice (or not at all)"
    assert "Traceback" not in log and "503 database unavailable" in log, log[-3000:]
    verified = audit_verify(outage)
    assert verified.returncode == 0 and " 0 failed" in verified.stdout, verified.stdout + verified.stderr


@pytest.mark.slow
def test_a_timer_worker_cut_off_mid_burst_loses_and_doubles_nothing(rt, db_url, tmp_path):
    outage = Outage(db_url)
    cases_at_sign_for(rt, 80)
    assert timers_left(rt) == 160
    log_file = tmp_path / "worker.log"
    with open(log_file, "w") as out:
        worker = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "timers", "run", "--worker", "cut"],
                                  cwd=ROOT, env=outage.env(), stdout=out, stderr=subprocess.STDOUT, text=True)

    def log() -> str:
        return log_file.read_text()

    try:
        assert wait_until(lambda: sum(firings(rt).values()) >= 10 or worker.poll() is not None, 60), "nothing fired"
        assert timers_left(rt) > 0, "the burst was over before the outages"
        for _ in range(3):
            outage.cut(0.8)
            time.sleep(0.5)
        assert wait_until(lambda: timers_left(rt) == 0 or worker.poll() is not None, 120), \
            f"{timers_left(rt)} timers left"
        assert worker.poll() is None, f"the worker died: {log()[-3000:]}"
        # The worker says it is back at its next refill or heartbeat after the last cut (within seconds).
        assert wait_until(lambda: "available again" in log(), 30), log()[-3000:]
    finally:
        stop(worker)  # its output is in the file
        outage.close()
    counts = firings(rt)
    text = log()
    print(f"\n[{db_url.split(':')[0]}] timers fired={sum(counts.values())} sessions killed={outage.killed} "
          f"worker: {text.strip().splitlines()[-1] if text.strip() else ''}")
    assert sum(counts.values()) == 160 and set(counts.values()) == {1}
    assert "database unavailable" in text and "Traceback" not in text, text[-3000:]


# -- the small cases ---------------------------------------------------------------------------

def test_a_database_that_refuses_connections_is_a_503(db_url):
    from app import create_app

    url = "postgresql+psycopg://postgres@127.0.0.1:1/test" if db_url.startswith("postgresql") \
        else "sqlite:////nonexistent-directory/x.db"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True, "DATABASE_RETRY_AFTER": 7})
    resp = app.test_client().post("/api/v1/cases", json=intake_body(), headers={"Authorization": "Bearer x"})
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "7"
    assert resp.get_json() == {"code": "database_unavailable", "errors": {},
                               "message": "the database is unavailable; try again shortly"}


def test_sqlite_locked_past_its_busy_timeout_is_a_503_and_then_works(db_url, clock):
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite's write lock; PostgreSQL waits for row locks")
    from app import create_app, runtime_of
    from engine.services.processes import deploy_paths
    from engine.services.seed import seed_demo

    app = create_app({"SQLALCHEMY_DATABASE_URI": db_url, "TESTING": True, "SQLITE_BUSY_TIMEOUT": 0.3})
    deploy_paths(runtime_of(app), None, "tests")
    token = {u["username"]: u["token"] for u in seed_demo(runtime_of(app))["users"]}["yjp_acceptor"]
    client, auth = app.test_client(), {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/cases", headers=auth).status_code == 200
    holder = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        locked = client.post("/api/v1/cases", json=intake_body(), headers=auth)
        assert locked.status_code == 503 and locked.get_json()["code"] == "database_unavailable"
        assert locked.headers["Retry-After"] == "2" and time.monotonic() - started < 5
        assert client.get("/api/v1/cases", headers=auth).status_code == 200  # WAL: readers go on
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert client.post("/api/v1/cases", json=intake_body(), headers=auth).status_code == 201
    with app.app_context():
        from app import db

        db.engine.dispose()


def test_only_an_outage_counts_as_unavailable(rt):
    with pytest.raises(Exception) as bug:
        with rt.db.read() as s:
            s.execute(sa.text("SELECT * FROM no_such_table"))
    assert not is_unavailable(bug.value)
    assert is_unavailable(sqlite3.OperationalError("database is locked"))
    assert not is_unavailable(sqlite3.OperationalError("no such table: x"))


def test_a_sqlite_writer_that_gives_up_its_turn_does_not_block_the_queue():
    from engine.store.db import FairLock

    lock, order = FairLock(), []
    assert lock.acquire()
    impatient = threading.Thread(target=lambda: order.append(("impatient", lock.acquire(timeout=0.1))))
    impatient.start()
    impatient.join()
    patient = threading.Thread(target=lambda: order.append(("patient", lock.acquire(timeout=10))))
    patient.start()
    time.sleep(0.1)
    lock.release()  # the impatient one's abandoned turn is skipped: the patient one goes next
    patient.join(timeout=5)
    assert order == [("impatient", False), ("patient", True)]
    lock.release()
    assert lock.acquire(timeout=1)
