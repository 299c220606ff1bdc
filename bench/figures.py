"""What the benchmarks print: the one percentile every bench takes of its timings.

(`bench/list_bench.py` keeps its own copy: it imports the app of another checkout, `--code`, and
nothing of this one.)
"""
from __future__ import annotations


def pct(values, p):
    """The `p`-th percentile of `values` (nearest rank, no interpolation); NaN when there are none."""
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] if values else float("nan")
