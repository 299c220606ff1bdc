"""The limits of the BPMN sandbox, its two refusals, and the budget every evaluation runs under.

Held apart so the checker (`engine.core.sandbox`), the guarded helpers
(`engine.core.sandbox_guards`) and the walk over data
(`engine.core.sandbox_data`) share one set of figures and one budget: each
evaluation of BPMN code gets a fresh `_Budget` (an operation count and a
wall-clock deadline), and all work done for it is charged there.
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from contextvars import ContextVar

MODES = ("eval", "exec")
MAX_SOURCE_LENGTH = 20_000
MAX_INT_BITS = 4096
MAX_SEQUENCE_LENGTH = 1_000_000
MAX_RANGE_LENGTH = 1_000_000
MAX_FORMAT_WIDTH = 10_000
MAX_DATA_DEPTH = 100
# About the number of characters a value takes once stored as JSON, shared references expanded.
MAX_STORED_SIZE = 2_000_000
OPERATION_BUDGET = 10_000_000
TIME_LIMIT_SECONDS = 5.0
CACHE_SIZE = 4096

# Methods of plain data that may be called, and the ones an expression may not call
# because they change the data they are called on.
SAFE_METHODS = frozenset({
    "get", "keys", "values", "items", "copy", "setdefault", "update",
    "append", "extend", "insert", "pop", "remove", "index", "count",
    "lower", "upper", "strip", "lstrip", "rstrip", "split", "rsplit", "join", "replace",
    "startswith", "endswith", "isoformat", "weekday", "isoweekday", "total_seconds",
})
MUTATING_METHODS = frozenset({"setdefault", "update", "append", "extend", "insert", "pop", "remove"})
# Attributes that may be read (not called) on plain data.
DATA_ATTRIBUTES = frozenset({
    "year", "month", "day", "hour", "minute", "second", "microsecond",
    "days", "seconds", "microseconds", "real", "imag",
})


class SandboxViolation(ValueError):
    """Source refused by the sandbox; `reasons` says why, one line each."""

    def __init__(self, source: str | None, reasons: Iterable[str] = ()):
        self.source = source
        self.reasons = list(reasons)
        super().__init__("refused: " + "; ".join(self.reasons))


class SandboxLimitExceeded(SandboxViolation):
    """Raised while guarded code runs, when it would exceed a resource limit."""

    def __init__(self, reason: str, source: str | None = None):
        super().__init__(source, [reason])


# -- the budget ---------------------------------------------------------------------------

class _Budget:
    __slots__ = ("remaining", "limit", "deadline", "seconds")

    def __init__(self):
        self.remaining = self.limit = OPERATION_BUDGET
        self.seconds = TIME_LIMIT_SECONDS
        self.deadline = time.monotonic() + self.seconds

    def charge(self, n: int) -> None:
        self.remaining -= n
        if self.remaining < 0:
            raise SandboxLimitExceeded(f"operation budget of {self.limit:,} exceeded")
        if time.monotonic() > self.deadline:
            raise SandboxLimitExceeded(f"time limit of {self.seconds:g} s exceeded")


_BUDGET: ContextVar[_Budget | None] = ContextVar("sandbox_budget", default=None)


def _charge(n: int) -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.charge(n)
