"""Timer benchmark: N pending timers, M of them due at the same instant, fired by 1 or more workers.

    python bench/timers_bench.py [--pending 100000] [--burst 10000] [--workers 1] [--fire-batch N] [--db-url URL]
                                 [--threads T] [--root CHECKOUT]

Builds N pending timers as real cases waiting for sign-for (two timers each:
warning and deadline), made by cloning one real case (its row, workflow state,
statistics timeline, units, tasks and timers) with fresh task ids and the
chosen due instants. M timers come due together (the burst); `--steady`
more come due one by one over the following `--window` seconds; the rest stay
pending far in the future. Real `flask timers run` worker processes then fire
them. Prints timers fired/s, lag (actual − due) p50/p99 for the burst and for
the timers that are not part of it, double fires (must be 0) and cases whose
timers fired out of their due order (must be 0). `--fire-batch 1` fires one
timer per transaction (as before batching); the default is the workers' own
(TIMER_FIRE_BATCH, 1 unless set). `--root` runs the workers from another checkout
of the same schema (e.g. a `git worktree` of an earlier commit), for before/after
figures in one session; `--against DIR [--rounds 3]` runs both in one command, in
turn and alternating, and prints each round's ratio (this ÷ DIR) and the median.
Before and after, the bare SpiffWorkflow cycle is timed on this machine
(bench.step_bench.machine_reference; `--no-reference` skips it) and the burst's
rate is printed also scaled to the machine the issue's targets were set on (its
bare cycle: 1.8 ms), as the range the two timings give.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import uuid
import zlib
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from bench.engine_bench import make_runtime  # noqa: E402
from bench.figures import pct  # noqa: E402
from bench.step_bench import ISSUE_BARE_MS, machine_reference, scaled_range  # noqa: E402


def template(rt):
    from engine.services import cases
    from engine.store.models import Case, CaseFact, CaseTask, CaseUnit
    from engine.store.timer_models import CaseTimer
    from tests.support import intake

    case = cases.start_case(rt, intake(), "bench")
    cases.complete_task(rt, case["open_tasks"][0]["id"], {"mediation_result": "unresolved"}, "bench")
    with rt.db.read() as s:
        row = s.scalar(sa.select(Case))
        tasks = s.scalars(sa.select(CaseTask).where(CaseTask.case_id == row.id, CaseTask.state == "ready")).all()
        timers = s.scalars(sa.select(CaseTimer).where(CaseTimer.case_id == row.id)).all()
        cols = {c.key: getattr(row, c.key) for c in Case.__table__.columns}
        cols["state"] = row.state  # its own table (case_state), cloned beside the case row
        cols["timeline"] = s.get(CaseFact, row.id).timeline  # the statistics timeline (case_fact), likewise
        cols["units"] = [{"unit_code": u.unit_code, "community": u.community, "created_at": u.created_at}
                         for u in s.scalars(sa.select(CaseUnit).where(CaseUnit.case_id == row.id))]
        task_cols = [{c.key: getattr(t, c.key) for c in CaseTask.__table__.columns} for t in tasks]
        timer_cols = [{c.key: getattr(t, c.key) for c in CaseTimer.__table__.columns} for t in timers]
    return cols, task_cols, timer_cols


def clone_rows(cols, task_cols, timer_cols, i, due: datetime):
    state = json.loads(zlib.decompress(cols["state"]))
    timer_ids = {t["task_id"] for t in timer_cols}
    # The timer tasks live in the top workflow or in a subprocess (a call activity's) of the state.
    task_maps = [state["tasks"], *(sub["tasks"] for sub in state.get("subprocesses", {}).values())]
    for tid in timer_ids:
        next(m for m in task_maps if tid in m)[tid]["internal_data"]["event_value"] = due.isoformat()
    text = json.dumps(state, ensure_ascii=False, separators=(",", ":"))
    mapping = {old: str(uuid.uuid4()) for m in task_maps for old in m}
    for old, new in mapping.items():
        text = text.replace(old, new)
    case = dict(cols, id=None, case_no=f"B{i:09d}", state=zlib.compress(text.encode(), 1))
    case.pop("id")  # the state, the timeline and the units go to their own tables (build)
    tasks = [dict(t, id=mapping[t["id"]]) for t in task_cols]
    timers = [dict(t, task_id=mapping[t["task_id"]], attached_task_id=mapping.get(t["attached_task_id"]),
                   due_at=due, claimed_by=None, lease_until=None) for t in timer_cols]
    for t in timers:
        t.pop("id")
    return case, tasks, timers


def build(rt, pending, burst, steady, window):
    """Insert the pending timers; returns the instant the burst is due (set once the filler is in)."""
    from engine.store.models import Case, CaseFact, CaseState, CaseTask, CaseUnit
    from engine.store.timer_models import CaseTimer

    cols, task_cols, timer_cols = template(rt)
    per_case = len(timer_cols)
    n_cases = pending // per_case
    burst_cases, steady_cases = burst // per_case, steady // per_case
    timed_cases = burst_cases + steady_cases

    def insert(indices, due_of):
        rows = [clone_rows(cols, task_cols, timer_cols, i, due_of(i)) for i in indices]
        with rt.db.write() as s:
            cases = [{k: v for k, v in r[0].items() if k not in ("state", "timeline", "units")} for r in rows]
            ids = s.execute(sa.insert(Case).returning(Case.id, sort_by_parameter_order=True), cases).scalars().all()
            s.execute(sa.insert(CaseState), [{"case_id": cid, "state": r[0]["state"]} for cid, r in zip(ids, rows)])
            s.execute(sa.insert(CaseFact), [{"case_id": cid, "timeline": r[0]["timeline"]} for cid, r in zip(ids, rows)])
            s.execute(sa.insert(CaseUnit), [dict(u, case_id=cid) for cid, r in zip(ids, rows) for u in r[0]["units"]])
            s.execute(sa.insert(CaseTask), [dict(t, case_id=cid) for cid, r in zip(ids, rows) for t in r[1]])
            s.execute(sa.insert(CaseTimer), [dict(t, case_id=cid) for cid, r in zip(ids, rows) for t in r[2]])

    t0 = time.perf_counter()
    far = datetime.now(timezone.utc) + timedelta(days=30)
    chunk = 2000
    for base in range(timed_cases, n_cases, chunk):  # the filler: pending far in the future
        insert(range(base, min(n_cases, base + chunk)), lambda i: far + timedelta(hours=i % 5000))
    rate = (n_cases - timed_cases) / max(time.perf_counter() - t0, 1e-6)
    # The burst falls due 15 s after the timed cases are in (estimated from the filler's pace).
    start_at = datetime.now(timezone.utc) + timedelta(seconds=15 + 1.5 * timed_cases / max(rate, 1))

    def due_of(i):
        if i < burst_cases:
            return start_at
        return start_at + timedelta(seconds=window * (i - burst_cases + 1) / (steady_cases + 1))

    for base in range(0, timed_cases, chunk):
        insert(range(base, min(timed_cases, base + chunk)), due_of)
    left = (start_at - datetime.now(timezone.utc)).total_seconds()
    print(f"built {n_cases * per_case} pending timers in {time.perf_counter() - t0:.1f} s; "
          f"the burst is due in {left:.1f} s", flush=True)
    if left < 3:
        raise SystemExit("building took longer than estimated: the burst is already due; run again")
    return start_at


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument("--steady", type=int, default=1_000, help="timers due one by one after the burst")
    parser.add_argument("--window", type=float, default=30.0, help="seconds over which the steady timers fall due")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--fire-batch", type=int, default=None, help="due timers per transaction (TIMER_FIRE_BATCH)")
    parser.add_argument("--db-url", default=None)
    parser.add_argument("--threads", type=int, default=None, help="firing threads per worker (the workers' default)")
    parser.add_argument("--root", default=str(ROOT), help="the checkout whose `flask timers run` fires them")
    parser.add_argument("--no-reference", action="store_true", help="skip timing the bare SpiffWorkflow cycle")
    parser.add_argument("--against", default=None,
                        help="another checkout: its workers and this one's fire the same burst in turn, alternating")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the comparison (with --against)")
    args = parser.parse_args(argv)

    if args.against:
        compare(args)
        return
    references = [] if args.no_reference else [machine_reference()]
    result = burst_run(args, args.root)
    report(result)
    if references:
        references.append(machine_reference())
        print(f"bare Spiff cycle now  p50 {' / '.join(f'{r:.2f}' for r in references)} ms (before / after): "
              f"the burst at the issue's machine speed ({ISSUE_BARE_MS} ms) "
              f"{scaled_range(result['rate'], references, ' timers/s')}")


def compare(args) -> None:
    """`--against DIR`: the same burst fired by this checkout's workers (or `--root`'s) and by DIR's, in turn,
    `--rounds` times, the order alternating; prints each round's rates and their ratio, then the median."""
    this, other = str(Path(args.root).resolve()), str(Path(args.against).resolve())
    ratios = []
    for n in range(args.rounds):
        rates = {}
        for root in ((this, other) if n % 2 == 0 else (other, this)):
            print(f"-- round {n + 1}: {root}", flush=True)
            result = burst_run(args, root)
            report(result)
            rates[root] = result["rate"]
        ratios.append(rates[this] / rates[other])
        print(f"round {n + 1}: burst {rates[this]:.0f} timers/s against {rates[other]:.0f} ({ratios[-1]:.2f}x)",
              flush=True)
    print(f"{this} against {other}, median of {len(ratios)} rounds: burst {median(ratios):.2f}x", flush=True)


def burst_run(args, root: str) -> dict:
    """Build the pending timers in a fresh database, let `root`'s workers fire them; the figures."""
    rt, url, cleanup = make_runtime(args.db_url)
    from engine.store.models import CaseEvent
    from engine.store.timer_models import CaseTimer

    try:
        start_at = build(rt, args.pending, args.burst, args.steady, args.window)
        with rt.db.write() as s:  # the template case's own timers would only add noise
            s.execute(sa.delete(CaseTimer).where(CaseTimer.due_at < start_at))
        env = dict(os.environ, DATABASE_URL=url, LOG_LEVEL="WARNING")
        if args.fire_batch is not None:
            env["TIMER_FIRE_BATCH"] = str(args.fire_batch)
        threads = ["--threads", str(args.threads)] if args.threads else []
        procs = [subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "timers", "run",
                                   "--worker", f"bench{i}", *threads], cwd=root, env=env)
                 for i in range(args.workers)]
        expected = args.burst + args.steady
        end_of_window = start_at + timedelta(seconds=args.window)
        deadline = time.monotonic() + 600
        fired = 0
        while time.monotonic() < deadline:
            time.sleep(1)
            with rt.db.read() as s:
                fired = s.scalar(sa.select(sa.func.count()).select_from(CaseEvent)
                                 .where(CaseEvent.type == "timer_fired"))
            if fired >= expected and datetime.now(timezone.utc) > end_of_window:
                break
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)
        with rt.db.read() as s:
            events = s.execute(sa.select(CaseEvent.task_id, CaseEvent.payload, CaseEvent.case_id, CaseEvent.seq)
                               .where(CaseEvent.type == "timer_fired")
                               .order_by(CaseEvent.case_id, CaseEvent.seq)).all()
            left_due = s.scalar(sa.select(sa.func.count()).select_from(CaseTimer)
                                .where(CaseTimer.due_at <= end_of_window))
        database = rt.db.engine.dialect.name
    finally:
        if cleanup:
            cleanup()
    doubles = sum(1 for c in Counter(e.task_id for e in events).values() if c > 1)
    last_due: dict = {}
    out_of_order = set()
    for e in events:  # in each case's own order (seq): the due instants never go back
        due = datetime.fromisoformat(e.payload["due_at"])
        if e.case_id in last_due and due < last_due[e.case_id]:
            out_of_order.add(e.case_id)
        last_due[e.case_id] = due
    lags_burst, lags_steady, fired_times = [], [], []
    for e in events:
        due = datetime.fromisoformat(e.payload["due_at"])
        at = datetime.fromisoformat(e.payload["fired_at"])
        fired_times.append(at)
        (lags_burst if due == start_at else lags_steady).append((at - due).total_seconds())
    span = (max(fired_times) - start_at).total_seconds() if fired_times else float("nan")
    burst_span = max(lags_burst) if lags_burst else float("nan")
    return {"database": database, "args": args, "events": len(events), "expected": expected, "left_due": left_due,
            "burst_span": burst_span, "rate": len(lags_burst) / burst_span, "span": span,
            "lags_burst": lags_burst, "lags_steady": lags_steady, "doubles": doubles,
            "out_of_order": len(out_of_order), "cases": len(last_due)}


def report(r: dict) -> None:
    args = r["args"]
    batch = args.fire_batch if args.fire_batch is not None else os.environ.get("TIMER_FIRE_BATCH", "default")
    print(f"database              {r['database']}, {args.workers} worker(s), fire batch {batch}")
    print(f"pending timers        {args.pending} ({args.burst} due at once, {args.steady} steady)")
    print(f"fired                 {r['events']} of {r['expected']} (due ones left unfired: {r['left_due']})")
    print(f"burst drained in      {r['burst_span']:.2f} s  ->  {r['rate']:.0f} timers/s")
    print(f"overall               {r['events'] / r['span']:.0f} timers fired/s over {r['span']:.1f} s")
    print(f"lag burst  p50/p99    {pct(r['lags_burst'], 50):.2f} / {pct(r['lags_burst'], 99):.2f} s")
    print(f"lag others p50/p99    {pct(r['lags_steady'], 50):.2f} / {pct(r['lags_steady'], 99):.2f} s")
    print(f"double fires          {r['doubles']}")
    print(f"cases out of order    {r['out_of_order']} of {r['cases']}", flush=True)


if __name__ == "__main__":
    main()
