"""HTTP benchmark: full standard cases through the JSON API of a real served app, from a separate process.

    python bench/http_bench.py [--db sqlite,postgresql] [--clients 1,4,16] [--seconds 10]
                               [--serve-args "--workers 2 --threads 4"] [--root DIR] [--pg-url URL]

For each database (a fresh SQLite file, or a schema of its own in PostgreSQL:
bench.databases) it starts `flask serve --port P SERVE_ARGS` as its own
process (gunicorn workers and the timer service, as in production), loads the
demo users (`flask seed demo`), then for each client count runs that many
clients (threads of this process, each with a keep-alive connection) for
`--seconds`: each client registers a case as the acceptor (POST /api/v1/cases)
and completes the standard procedure's five tasks, each as its own demo user
(POST /api/v1/tasks/{id}/complete: mediate, sign for, handle, approve,
evaluate), the next task read from the previous answer. Prints, per client
count: task completions/s, cases/s, requests/s, and p50/p99 of a completion
and of an intake, in ms; any non-2xx answer is counted and shown.

The machine's speed now: before and after the HTTP runs the bench times the
bare SpiffWorkflow cycle in this process (bench.step_bench.machine_reference,
the server idle) and prints each database's best throughput, and its p99 of a
completion at 4 clients, also scaled to the machine the issue's targets were
set on (its bare cycle: 1.8 ms), since this shared machine's speed has varied
fourfold from day to day. `--no-reference`
skips it.

Notifications are delivered, as in a city that has set up its channels and its
units' contacts: the server's SMS channel points at the local gateway the tests
use (tests/gateways.py, a real HTTP server in this process; the citizens' texts
go there) and every unit's contact is a signed webhook to the same server, with
quiet hours off so that a run at any hour does the same work. Without them
every notice would fail, open an incident and note it on its case (work no
configured city does), and the citizens' texts would fail or wait for morning
by the hour of the run. Printed per client count: notices delivered, and any
dead ones.

`--root /work/main --serve-args ""` serves another checkout the same way
(main's `flask serve`: the development server), for before/after figures.
`--against DIR [--rounds 3]` compares this checkout (or `--root`) with DIR in
one run: both are served in turn, the order alternating from round to round,
and each round prints both best throughputs and p99s at 4 clients with their
ratio, then the median ratio: on a shared machine whose speed swings from
minute to minute, a before/after ratio taken minutes apart means little.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.databases import bench_database  # noqa: E402
from bench.figures import pct  # noqa: E402
from bench.step_bench import ISSUE_BARE_MS, machine_reference, scaled_range  # noqa: E402
from tests.api_support import STEPS, intake_body  # noqa: E402
from tests.gateways import Gateway, channel_config  # noqa: E402

PG_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PROCEDURE = ("mediate", "sign_for", "handle", "approve", "evaluate")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """One keep-alive connection; `call` returns (status, body, seconds)."""

    def __init__(self, port: int, tokens: dict):
        self.port, self.tokens = port, tokens
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method: str, path: str, user: str, body=None):
        headers = {"Authorization": f"Bearer {self.tokens[user]}", "Content-Type": "application/json"}
        data = json.dumps(body, ensure_ascii=False).encode() if body is not None else None
        started = time.perf_counter()
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                break
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()  # the server closed a kept-alive connection: one new one
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt:
                    raise
        return resp.status, (json.loads(raw) if raw else None), time.perf_counter() - started


def set_unit_contacts(db_url: str, webhook_url: str) -> int:
    """Every unit's notifications to `webhook_url` (engine.services.notifications.set_contact); returns how many."""
    from sqlalchemy import select

    from app import create_app, runtime_of
    from engine.services.notifications import set_contact
    from engine.store.org_models import Unit

    rt = runtime_of(create_app({"SQLALCHEMY_DATABASE_URI": db_url, "LOG_LEVEL": "WARNING"}))
    try:
        with rt.db.read() as session:
            codes = session.scalars(select(Unit.code)).all()
        for code in codes:
            set_contact(rt, "unit", code, webhook_url=webhook_url, webhook_secret="http-bench-signing-secret",
                        notify_channel="webhook")
        return len(codes)
    finally:
        rt.db.engine.dispose()


def dead_notices(db_url: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.scalar(sa.text("SELECT count(*) FROM outbox WHERE status = 'dead'"))
    finally:
        engine.dispose()


def run_clients(port: int, tokens: dict, clients: int, seconds: float) -> dict:
    stop = threading.Event()
    lock = threading.Lock()
    out = {"completion": [], "intake": [], "cases": 0, "errors": {}, "requests": 0}

    def one():
        client = Client(port, tokens)
        completion, intake, cases, requests, errors = [], [], 0, 0, {}
        while not stop.is_set():
            status, case, took = client.call("POST", "/api/v1/cases", "yjp_acceptor", intake_body())
            requests += 1
            if status != 201:
                errors[f"intake {status}"] = errors.get(f"intake {status}", 0) + 1
                continue
            intake.append(took)
            ok = True
            for element in PROCEDURE:
                task = case["open_tasks"][0]
                user, data = STEPS[element]
                status, case, took = client.call("POST", f"/api/v1/tasks/{task['id']}/complete", user,
                                                 {"data": data})
                requests += 1
                if status != 200:
                    errors[f"{element} {status}"] = errors.get(f"{element} {status}", 0) + 1
                    ok = False
                    break
                completion.append(took)
            cases += ok
        with lock:
            out["completion"] += completion
            out["intake"] += intake
            out["cases"] += cases
            out["requests"] += requests
            for k, v in errors.items():
                out["errors"][k] = out["errors"].get(k, 0) + v

    threads = [threading.Thread(target=one, daemon=True) for _ in range(clients)]
    cpu = time.process_time()
    started = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=120)
    out["elapsed"] = time.perf_counter() - started
    out["client_cpu"] = time.process_time() - cpu  # this process's CPU: the load's own share of the cores
    return out


def serve(root: Path, db_url: str, serve_args: list[str], workdir: Path, gateway: Gateway):
    port = _free_port()
    env = dict(os.environ, DATABASE_URL=db_url, LOG_LEVEL=os.environ.get("LOG_LEVEL", "INFO"),
               DEMO_TOKEN_FILE=str(workdir / "tokens.tsv"),
               **channel_config(gateway, OUTBOX_QUIET_HOURS="off", OUTBOX_HTTP_TIMEOUT="10"))
    log = open(workdir / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "serve", "--port", str(port),
                             *serve_args], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the server did not start:\n{(workdir / 'server.log').read_text()[-3000:]}")
        time.sleep(0.2)
    seed = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "seed", "demo", "--token-file",
                           str(workdir / "tokens.tsv")], cwd=root, env=env, capture_output=True, text=True)
    if seed.returncode:
        raise SystemExit(f"seed demo failed: {seed.stderr[-2000:]}")
    tokens = dict(line.split("\t") for line in (workdir / "tokens.tsv").read_text().splitlines())
    set_unit_contacts(db_url, f"{gateway.url}/hooks/units")
    return proc, port, tokens, log


def bench(database: str, args, root: str | None = None) -> list[dict]:
    url, cleanup = bench_database(None if database == "sqlite" else args.pg_url, "http-bench")
    workdir = Path(tempfile.mkdtemp(prefix="http-bench-"))
    with Gateway() as gateway:
        return _bench(database, args, url, cleanup, workdir, gateway, root or args.root)


def _bench(database: str, args, url: str, cleanup, workdir: Path, gateway: Gateway, root: str) -> list[dict]:
    proc, port, tokens, log = serve(Path(root), url, args.serve_args.split(), workdir, gateway)
    rows = []
    try:
        run_clients(port, tokens, 2, args.warmup)  # warm the workers (imports, definitions, pools)
        for clients in args.clients:
            delivered = len(gateway.received)
            r = run_clients(port, tokens, clients, args.seconds)
            done = len(r["completion"])
            rows.append({"db": database, "clients": clients, "completions_s": done / r["elapsed"],
                         "cases_s": r["cases"] / r["elapsed"], "requests_s": r["requests"] / r["elapsed"],
                         "p50": pct(r["completion"], 50) * 1000, "p99": pct(r["completion"], 99) * 1000,
                         "intake_p50": pct(r["intake"], 50) * 1000, "intake_p99": pct(r["intake"], 99) * 1000,
                         "client_ms": r["client_cpu"] * 1000 / max(1, r["requests"]), "errors": r["errors"],
                         "notices": len(gateway.received) - delivered, "dead": dead_notices(url)})
            row = rows[-1]
            print(f"{database:10} {clients:3} clients  {row['completions_s']:7.1f} completions/s  "
                  f"{row['cases_s']:6.1f} cases/s  {row['requests_s']:7.1f} req/s  completion p50 "
                  f"{row['p50']:6.1f} ms p99 {row['p99']:6.1f} ms  intake p50 {row['intake_p50']:6.1f} ms "
                  f"p99 {row['intake_p99']:6.1f} ms  client CPU {row['client_ms']:.1f} ms/request  notices delivered "
                  f"{row['notices']} (dead so far {row['dead']})"
                  f"{'  errors ' + str(row['errors']) if row['errors'] else ''}",
                  flush=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if cleanup:
            cleanup()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--clients", default="1,4,16", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per client count")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--serve-args", default="--workers 2 --threads 4",
                        help="arguments after `flask serve --port P` (\"\" for a checkout's defaults)")
    parser.add_argument("--root", default=str(ROOT), help="the checkout to serve (default: this one)")
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--against", default=None,
                        help="another checkout (e.g. a `git worktree` of an earlier commit): serve both in turn, "
                             "alternating, and print the ratio of each round and its median")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the comparison (with --against)")
    parser.add_argument("--no-reference", action="store_true", help="skip timing the bare SpiffWorkflow cycle")
    args = parser.parse_args()
    print(f"serving {args.root} with `flask serve {args.serve_args}`; {args.seconds:g} s per client count; "
          f"{os.cpu_count()} cores", flush=True)
    databases = [d.strip() for d in args.db.split(",") if d.strip()]
    if args.against:
        compare(databases, args)
        return
    references = [] if args.no_reference else [machine_reference()]
    rows = []
    for database in databases:
        rows += bench(database, args)
    if references:
        references.append(machine_reference())
        print(f"bare SpiffWorkflow cycle now: p50 {' / '.join(f'{r:.2f}' for r in references)} ms (before / after "
              f"the runs); the issue's figures were set at {ISSUE_BARE_MS} ms")
    four = [r for r in rows if r["clients"] == 4]
    for r in four:
        best = max(x["completions_s"] for x in rows if x["db"] == r["db"])
        scaled = f" ({scaled_range(best, references)} at the issue's machine speed)" if references else ""
        tail = f" ({scaled_range(r['p99'], references, ' ms', duration=True)} there)" if references else ""
        print(f"{r['db']}: best {best:.1f} completions/s{scaled}; p99 of a completion at 4 clients "
              f"{r['p99']:.1f} ms{tail}")


def compare(databases: list[str], args) -> None:
    """`--against DIR`: this checkout and DIR served in turn, `--rounds` times per database, the order
    alternating (this, DIR; DIR, this; ...), so both see the same machine; prints each round's best
    completions/s and p99 at 4 clients of both, their ratio (this ÷ DIR), and the median ratio."""
    this, other = str(Path(args.root).resolve()), str(Path(args.against).resolve())
    for database in databases:
        ratios, tails = [], []
        for n in range(args.rounds):
            found = {}
            for root in ((this, other) if n % 2 == 0 else (other, this)):
                print(f"-- {database} round {n + 1}: {root}", flush=True)
                found[root] = bench(database, args, root)
            best = {root: max(r["completions_s"] for r in rows) for root, rows in found.items()}
            p99 = {root: next((r["p99"] for r in rows if r["clients"] == 4), None) for root, rows in found.items()}
            ratios.append(best[this] / best[other])
            line = (f"{database} round {n + 1}: best {best[this]:.1f} completions/s against {best[other]:.1f} "
                    f"({ratios[-1]:.2f}x)")
            if p99[this] is not None and p99[other] is not None:
                tails.append(p99[this] / p99[other])
                line += f"; p99 at 4 clients {p99[this]:.1f} ms against {p99[other]:.1f} ms ({tails[-1]:.2f}x)"
            print(line, flush=True)
        summary = f"{database}: {this} against {other}, median of {len(ratios)} rounds: throughput {median(ratios):.2f}x"
        if tails:
            summary += f", p99 at 4 clients {median(tails):.2f}x (below 1: shorter)"
        print(summary, flush=True)


if __name__ == "__main__":
    main()
