"""Sandbox benchmark: how fast hostile BPMN code is refused, and what the guards cost ordinary code.

    python bench/sandbox_bench.py [--runs 2000]

Prints, in milliseconds: the time to refuse each hostile script at run time
(evaluation, result check and copy share one budget and time limit, so each
is bounded), the time `processes validate` takes to refuse the two observed
hostile files and to pass the standard procedure, and the median cost of
evaluating an ordinary gateway condition and running an ordinary script.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HOSTILE = {
    "observed: x=[0]*1e6; y=[x]*1e6": "x = [0]*1000000; y = [x]*1000000",
    "small list shared 1e6 times": "x = [0] * 1000\ny = [x] * 1000000",
    "doubling a list 64 times": "a = [0]\nfor i in range(64):\n    a = [a, a]",
    "comparing two 2**40 DAGs": "a = [0]\nb = [0]\nfor i in range(40):\n    a = [a, a]\n    b = [b, b]\nc = a == b",
    "tuple DAG as a dict key": "t = (0,)\nfor i in range(60):\n    t = (t, t)\nd = {t: 1}",
    "sorting 1e6 shared lists": "x = [0] * 1000000\ny = [x] * 1000000\nz = sorted(y)",
    "observed: 'a' * 10**10": "x = 'a' * (10 ** 10)",
}


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:9.1f} ms"


def refuse_at_run_time() -> None:
    from engine.core.sandbox import SandboxEnvironment, SandboxViolation

    env = SandboxEnvironment()
    print("refused at run time (SandboxEnvironment.execute):")
    for name, script in HOSTILE.items():
        start = time.perf_counter()
        try:
            env.execute(script, {})
            verdict = "ACCEPTED"
        except SandboxViolation as err:
            verdict = err.reasons[0][:60]
        print(f"  {name:34} {_ms(time.perf_counter() - start)}  {verdict}")


def validation() -> None:
    from app import create_app, runtime_of
    from engine.services.processes import validate_sources

    rt = runtime_of(create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "LOG_LEVEL": "WARNING"}))
    standard = (rt.processes_dir / "dispute_urban_management.bpmn").read_bytes()
    count = b"<bpmn:script>return_count = return_count + 1</bpmn:script>"
    print("processes validate:")
    for name, script in (("standard procedure (passes)", None),
                         ("observed shared-reference file", HOSTILE["observed: x=[0]*1e6; y=[x]*1e6"]),
                         ("observed 'a' * 10**10 file", HOSTILE["observed: 'a' * 10**10"])):
        data = standard if script is None else standard.replace(count, f"<bpmn:script>{script}</bpmn:script>".encode())
        start = time.perf_counter()
        problems = validate_sources(rt, {"dispute_urban_management.bpmn": data})
        verdict = "; ".join(f"[{p['element']}] line {p['line']}" for p in problems) or "OK"
        print(f"  {name:34} {_ms(time.perf_counter() - start)}  {verdict}")


def ordinary(runs: int) -> None:
    from engine.core.sandbox import SandboxEnvironment

    env = SandboxEnvironment()
    data = {"mediation_result": "unresolved", "rework_count": 1, "max_reworks": 3, "answer": "redo",
            "reply_text": "已责令整改", "routing": {"unit": "YC-CGJ", "candidates": ["a", "b"]}}
    cases = {
        "condition": lambda: env.evaluate("answer == 'redo' and rework_count < max_reworks", data),
        "condition with `in`": lambda: env.evaluate("mediation_result in ('unresolved', 'escalate')", data),
        "script": lambda: env.execute("rework_count = rework_count + 1", dict(data)),
    }
    print(f"ordinary code, median of {runs}:")
    for name, call in cases.items():
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        print(f"  {name:34} {statistics.median(times) * 1e6:9.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    refuse_at_run_time()
    validation()
    ordinary(args.runs)


if __name__ == "__main__":
    main()
