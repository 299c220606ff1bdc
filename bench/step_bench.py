"""Step cost: the project's step against the bare SpiffWorkflow cycle, side by side, in one run.

    python bench/step_bench.py [--cases 40] [--aging 20] [--aging-cases 13] [--db sqlite,postgresql]
                               [--pg-url URL] [--profile]

On each database (a fresh SQLite file; a schema of its own on PostgreSQL, the
URL of bench/databases.py's default test database unless --pg-url), the happy
path of processes/dispute_urban_management.bpmn (start + 5 completions) runs --cases
times through the case services (in-process service calls: lock, load, act,
record, save, commit). Right after each of the project's operations the bare
library cycle runs on the same state: deserialize the state the project had
stored before the operation, complete the same task with the same data, run the
engine steps, serialize (`BpmnWorkflow` with SpiffWorkflow's own
PythonScriptEngine; the deadline functions the diagram's timers call are given
to it, and its service calls return what the project's handlers returned, from
the case's log). Both are timed in the same process, interleaved, so load on
the machine hits both alike. Printed per database: p50 of each, the ratio of
their sums (project / bare; the issue's target is <= 2x on SQLite, <= 3x on
PostgreSQL), SQL statements per operation and the round trips they take,
bytes stored per closed case
(case row with its state, tasks, events, outbox, timers, history included) and
the aging figure: the p50 of the rework loop's steps (handle, approve, evaluate,
review) after --aging rework loops over their p50 in a fresh case, from
--aging-cases cases, i.e. 4 x aging-cases steps on each side (>= 50 with the
default 13). --profile prints the top of a cProfile of the project's steps.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from bench.databases import bench_database, stored_bytes  # noqa: E402
from bench.figures import pct  # noqa: E402

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
STEPS = [
    {"mediation_result": "unresolved"},
    {"decision": "accept", "responsible_section": "执法一科", "responsible_person": "李四"},
    {"result": "已修复", "measures": "约谈"},
    {"decision": "approve"},
    {"rating": "satisfied"},
]


def make_runtime(db_url):
    from flask_migrate import upgrade

    from app import create_app, runtime_of
    from engine.services.processes import deploy_paths

    url, cleanup = bench_database(db_url, "step-bench")
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "LOG_LEVEL": "WARNING"})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
    rt = runtime_of(app)
    deploy_paths(rt, None, "bench")
    return rt, cleanup


class Statements:
    """Counts the SQL statements the engine sends, and the round trips they take: statements sent in one
    psycopg pipeline (engine.store.batch) count as one round trip (the commit is not counted)."""

    def __init__(self, engine):
        self.n = 0
        self.trips = 0
        self._piped = False
        sa.event.listen(engine, "before_cursor_execute", self._count)

    def reset(self):
        self.n = self.trips = 0
        self._piped = False

    def _count(self, conn, cursor, *args):
        self.n += 1
        pgconn = getattr(cursor.connection, "pgconn", None)
        piped = bool(pgconn is not None and pgconn.pipeline_status)
        if not (piped and self._piped):
            self.trips += 1
        self._piped = piped


class Bare:
    """The library's own cycle: deserialize, step, serialize (no database, no bookkeeping)."""

    def __init__(self, rt, definition):
        from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment

        self.definition = definition
        self.replies: list[dict] = []
        bare = self

        class Environment(TaskDataEnvironment):
            def call_service(self, context, operation_name, operation_params, **kwargs):
                reply = bare.replies.pop(0)
                context.update(reply.get("data") or {})
                return json.dumps(reply["result"], ensure_ascii=False)

        self.engine = PythonScriptEngine(environment=Environment(dict(rt.functions)))

    def start(self, data: dict, replies: list[dict]) -> bytes:
        from SpiffWorkflow import TaskState
        from SpiffWorkflow.bpmn import BpmnWorkflow

        from engine.core.serializer import dump_workflow

        self.replies = list(replies)
        wf = BpmnWorkflow(self.definition.spec, self.definition.subprocess_specs, script_engine=self.engine)
        for task in wf.get_tasks(state=TaskState.READY):
            task.data.update(data)
        wf.do_engine_steps()
        return dump_workflow(wf)

    def step(self, state: bytes, task_id: str, data: dict, replies: list[dict]) -> bytes:
        from engine.core.serializer import dump_workflow, load_workflow

        self.replies = list(replies)
        wf = load_workflow(state, self.definition.spec, self.definition.subprocess_specs)
        wf.script_engine = self.engine
        task = wf.get_task_from_id(uuid.UUID(task_id))
        task.data.update(data)
        task.run()
        wf.do_engine_steps()
        return dump_workflow(wf)


def _op_events(rt, case_id: int, after_seq: int):
    from engine.store.models import CaseEvent

    with rt.db.read() as s:
        return s.execute(sa.select(CaseEvent.type, CaseEvent.payload)
                         .where(CaseEvent.case_id == case_id, CaseEvent.seq > after_seq)
                         .order_by(CaseEvent.seq)).all()


def _state(session, case) -> bytes:
    return case.state


def _case_row(rt, case_no: str):
    from engine.store.models import Case

    with rt.db.read() as s:
        case = s.scalar(sa.select(Case).where(Case.case_no == case_no))
        return case.id, _state(s, case), case.last_seq


def side_by_side(rt, n_cases: int, profile: cProfile.Profile | None, counter: Statements):
    """(project ms per op, bare ms per op, statements per op) over n_cases happy paths."""
    from engine.services import cases
    from tests.support import intake

    project, bare_ms, statements, trips = [], [], [], []
    bare = None
    for _ in range(n_cases):
        counter.reset()
        t = time.perf_counter()
        if profile:
            profile.enable()
        case = cases.start_case(rt, intake(), "bench")
        if profile:
            profile.disable()
        project.append((time.perf_counter() - t) * 1000)
        statements.append(counter.n)
        trips.append(counter.trips)
        case_id, state, seq = _case_row(rt, case["case_no"])
        events = _op_events(rt, case_id, 0)
        if bare is None:
            with rt.db.read() as s:
                from engine.store.models import Case
                definition = rt.definitions.get(s, s.get(Case, case_id).definition_id)
            bare = Bare(rt, definition)
        started = next(e for e in events if e.type == "case_started")
        replies = [e.payload for e in events if e.type == "service_called"]
        t = time.perf_counter()
        bare.start(started.payload["data"], replies)
        bare_ms.append((time.perf_counter() - t) * 1000)
        for data in STEPS:
            task_id = case["open_tasks"][0]["id"]
            counter.reset()
            t = time.perf_counter()
            if profile:
                profile.enable()
            case = cases.complete_task(rt, task_id, data, "bench")
            if profile:
                profile.disable()
            project.append((time.perf_counter() - t) * 1000)
            statements.append(counter.n)
            trips.append(counter.trips)
            events = _op_events(rt, case_id, seq)
            replies = [e.payload for e in events if e.type == "service_called"]
            before, (_, state, seq) = state, _case_row(rt, case["case_no"])
            t = time.perf_counter()
            bare.step(before, task_id, data, replies)
            bare_ms.append((time.perf_counter() - t) * 1000)
        assert case["status"] == "closed", case["status"]
    return project, bare_ms, statements, trips


def aging(rt, loops: int, n_cases: int):
    """(fresh step ms, aged step ms): the rework loop's steps in loop 0 and in loop `loops`, n_cases cases."""
    from engine.services import cases
    from tests.support import intake

    rt.tables.time_limits["rework"]["max_reworks"] = loops + 10
    loop = [{"result": "r", "measures": "m"}, {"decision": "approve"}, {"rating": "dissatisfied"},
            {"instructions": "返工"}]
    fresh, old = [], []
    for _ in range(n_cases):
        case = cases.start_case(rt, intake(), "bench")
        for data in STEPS[:2]:
            case = cases.complete_task(rt, case["open_tasks"][0]["id"], data, "bench")
        for i in range(loops + 1):
            target = fresh if i == 0 else (old if i == loops else None)
            for data in loop:
                t = time.perf_counter()
                case = cases.complete_task(rt, case["open_tasks"][0]["id"], data, "bench")
                if target is not None:
                    target.append((time.perf_counter() - t) * 1000)
    return fresh, old


# The bare cycle's p50 on the machine where issue 15's figures were set (its text: "the bare SpiffWorkflow
# cycle (deserialize + step + serialize, 1.8 ms)"); `machine_reference` scales a figure of today to it.
ISSUE_BARE_MS = 1.8


def machine_reference(cases: int = 8) -> float:
    """The bare SpiffWorkflow cycle's p50 (ms) on this machine now, over `cases` happy paths on a fresh SQLite
    runtime: the yardstick of a noisy shared machine. A throughput measured beside it, times this figure
    over ISSUE_BARE_MS, is that throughput on a machine as fast as the one the issue's targets were set on."""
    rt, cleanup = make_runtime(None)
    try:
        _, bare, _, _ = side_by_side(rt, cases, None, Statements(rt.db.engine))
        return pct(bare, 50)
    finally:
        rt.db.engine.dispose()
        if cleanup:
            cleanup()


def scaled_range(figure: float, references: list[float], unit: str = "/s", *, duration: bool = False) -> str:
    """A throughput (or, with `duration`, a time, which shrinks where a throughput grows) scaled to the
    issue's machine by each timing of the reference: "lo–hi unit" (one figure when they agree). The reference
    drifts with the machine's load (4.2 and 7.4 ms minutes apart), so a scaled figure is indicative, never
    exact."""
    factors = sorted((ISSUE_BARE_MS / r if duration else r / ISSUE_BARE_MS) for r in references)
    lo, hi = figure * factors[0], figure * factors[-1]
    return f"{lo:.0f}{unit}" if round(lo) == round(hi) else f"{lo:.0f}–{hi:.0f}{unit}"


def run(name: str, url: str | None, args) -> None:
    from engine.store.models import Case

    rt, cleanup = make_runtime(url)
    try:
        counter = Statements(rt.db.engine)
        side_by_side(rt, 3, None, counter)  # warm-up: caches, connections
        with rt.db.read() as s:
            first_id = (s.scalar(sa.select(sa.func.max(Case.id))) or 0) + 1
        profile = cProfile.Profile() if args.profile else None
        project, bare, statements, trips = side_by_side(rt, args.cases, profile, counter)
        per_case, on_disk = stored_bytes(rt, first_id, args.cases)
        fresh, old = aging(rt, args.aging, args.aging_cases)
        ratio = sum(project) / sum(bare)
        print(f"== {name} ({len(project)} operations: {args.cases} x start + 5 completions)")
        print(f"project step    p50 {pct(project, 50):6.2f} ms  p99 {pct(project, 99):6.2f} ms  "
              f"mean {statistics.mean(project):6.2f} ms")
        print(f"bare Spiff cycle p50 {pct(bare, 50):6.2f} ms  p99 {pct(bare, 99):6.2f} ms  "
              f"mean {statistics.mean(bare):6.2f} ms")
        print(f"ratio project/bare  {ratio:.2f}x (sum over all operations); "
              f"p50 ratio {pct(project, 50) / pct(bare, 50):.2f}x")
        print(f"SQL statements per operation  mean {statistics.mean(statements):.1f}, "
              f"max {max(statements)}; round trips {statistics.mean(trips):.1f} (+ the commit)")
        disk = f", {on_disk:.0f} B on disk (pg_column_size)" if on_disk is not None else ""
        print(f"stored bytes per closed case  {per_case:.0f} B logical{disk}")
        print(f"aging: step p50 fresh {statistics.median(fresh):.2f} ms, after {args.aging} rework loops "
              f"{statistics.median(old):.2f} ms ({statistics.median(old) / statistics.median(fresh):.2f}x; "
              f"{len(fresh)} steps each side)")
        if profile is not None:
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(35)
            print(out.getvalue())
    finally:
        if cleanup:
            cleanup()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--aging", type=int, default=20, help="rework loops before the aged measurement")
    parser.add_argument("--aging-cases", type=int, default=13, help="cases measured for aging (4 steps each)")
    parser.add_argument("--db", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--pg-url", default=PG_DEFAULT)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the project's steps")
    args = parser.parse_args(argv)
    for name in [d.strip() for d in args.db.split(",") if d.strip()]:
        run(name, None if name == "sqlite" else args.pg_url, args)


if __name__ == "__main__":
    main()
