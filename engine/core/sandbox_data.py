"""The walk over the data BPMN code handles: measured as it will be stored, each container once.

A script's results and an expression's value go to the task data, which is
stored as JSON: a reference shared a million times is written a million
times. `check_stored_size` and `stored_copy` measure a value that way (its
size in about the characters it takes stored, shared references counted
each time they occur) while visiting each container once (memoised by id),
refuse cycles and nesting deeper than MAX_DATA_DEPTH, and stop as soon as
the size passes the limit; the copy expands shared references, so what is
stored is a tree no larger than the limit. `_scan` charges the budget the
expanded size of a value before `==`, `in`, hashing or sorting walk it in C,
where nothing can interrupt them. All of it is charged to the running
evaluation's budget and deadline.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import chain

from engine.core.sandbox_limits import (
    _BUDGET,
    MAX_DATA_DEPTH,
    MAX_STORED_SIZE,
    SandboxLimitExceeded,
    _Budget,
    _charge,
)

_SIZED = (str, bytes, bytearray, list, tuple, dict, set, frozenset)
_FREE_LENGTH = 256  # comparing strings this short costs less than charging for it

_PLAIN_SCALARS = frozenset({type(None), bool, int, float, str, date, datetime, timedelta, Decimal})
_CONTAINERS = frozenset({list, tuple, set, dict})
_CONTAINER_TYPES = (list, tuple, set, frozenset, dict)
_CHARGE_EVERY = 1024


class _Measure:
    """What one walk found: sizes and heights per container visited (memoised by id), and flags."""

    __slots__ = ("budget", "limit", "memo", "active", "pending", "plain", "cyclic")

    def __init__(self, limit: int | None):
        self.budget = _BUDGET.get() or _Budget()
        self.limit = limit
        self.memo: dict[int, tuple[int, int]] = {}
        self.active: set[int] = set()  # the containers on the path from the root: a cycle
        self.pending = 0
        self.plain = True
        self.cyclic = False

    def visit(self, n: int) -> None:
        self.pending += n
        if self.pending >= _CHARGE_EVERY:
            self.budget.charge(self.pending)
            self.pending = 0


def _scalar_size(value) -> int:
    kind = type(value)
    if kind is str:
        return len(value) + 2
    if kind is int:
        return value.bit_length() // 3 + 1
    if kind is Decimal:
        return len(value.as_tuple().digits) + 8
    return 32


def _measure(value, m: _Measure) -> tuple[int, int]:
    """(size, height) of `value` expanded as a tree, visiting each container once.

    The size counts a shared reference each time it occurs, as JSON writes it
    and as `==` or `hash` walk it, in about the characters it takes stored;
    the work is the number of distinct containers' items, charged to the
    budget. Stops as soon as the size passes `m.limit`.
    """
    kind = type(value)
    if kind in _PLAIN_SCALARS:
        return _scalar_size(value), 0
    if kind not in _CONTAINERS:
        m.plain = False
        if not isinstance(value, _CONTAINER_TYPES):
            return 1, 0
    key = id(value)
    known = m.memo.get(key)
    if known is not None:
        return known
    if key in m.active:
        m.cyclic = True
        return 2, 0
    if len(m.active) > MAX_DATA_DEPTH:  # deeper than anything stored; the height says so
        return 2, MAX_DATA_DEPTH + 1
    m.active.add(key)
    m.visit(len(value) + 1)
    size, height = 2, 0
    limit = m.limit
    for item in (chain.from_iterable(value.items()) if isinstance(value, dict) else value):
        item_kind = type(item)
        if item_kind is str:  # the common leaves inline: a list of a million numbers is common enough
            size += len(item) + 3
        elif item_kind is int:
            size += item.bit_length() // 3 + 2
        elif item_kind in _PLAIN_SCALARS:
            size += _scalar_size(item) + 1
        else:
            item_size, item_height = _measure(item, m)
            size += item_size + 1
            height = max(height, item_height)
        if limit is not None and size > limit:
            break
    m.active.discard(key)
    m.memo[key] = size, height + 1
    return size, height + 1


def measure(value, limit: int | None = None) -> _Measure:
    """Measure `value`; the result's `memo[id(value)]` is (size, height), `plain` and `cyclic` flags."""
    m = _Measure(limit)
    m.memo[0] = _measure(value, m)  # id 0 is never an object's: the root's figures
    m.budget.charge(m.pending)
    return m


def _scan(value):
    """Charge the work of comparing, hashing or searching `value`: every node it expands to.

    `x == y`, `x in y`, `hash(x)`, `sorted(x)` follow shared references again
    and again, in C and without a pause: `[[0] * 1000] * 1000` is two lists but
    a million items to compare. The expanded size is found visiting each list
    once, and charged to the budget before the operation runs.
    """
    kind = type(value)
    if kind is int or kind is bool or value is None:  # the usual operands, first and free
        return value
    if isinstance(value, _CONTAINER_TYPES):
        budget = _BUDGET.get() or _Budget()
        size = measure(value, max(budget.remaining, 0) + 1).memo[0][0]
        budget.charge(size)
    elif isinstance(value, _SIZED) and len(value) > _FREE_LENGTH:
        _charge(len(value))
    return value


def check_stored_size(value, what: str = "value", limit: int = MAX_STORED_SIZE) -> _Measure | None:
    """Refuse a value that cannot be stored: over `limit` characters as stored, nested too deep, or a cycle."""
    if not isinstance(value, _CONTAINER_TYPES) and (type(value) is not str or len(value) + 2 <= limit):
        return None  # a scalar (its size is bounded by the guards that built it)
    m = measure(value, limit)
    size, height = m.memo[0]
    if m.cyclic:
        raise SandboxLimitExceeded(f"{what} contains itself (a cycle cannot be stored)")
    if height > MAX_DATA_DEPTH:
        raise SandboxLimitExceeded(f"{what} is nested deeper than {MAX_DATA_DEPTH} levels")
    if size > limit:
        raise SandboxLimitExceeded(f"{what} is too large to store (over {limit:,} characters as stored, "
                                   f"shared references counted each time)")
    return m


def _copy(value):
    kind = type(value)
    if kind is dict:
        return {_copy(key): _copy(item) for key, item in value.items()}
    if kind in _CONTAINERS:
        return kind(_copy(item) for item in value)
    return value


def stored_copy(value, what: str = "value", limit: int = MAX_STORED_SIZE) -> tuple[object, bool]:
    """(a copy of `value` as it will be stored, whether it is plain data), refused when it cannot be stored.

    The copy expands shared references, as the JSON serializer will, so what
    is stored afterwards is a tree of at most `limit` characters. The size is
    measured first, each container once, so the cost is bounded by the limit
    and the script's own work, never by the expanded size.
    """
    if not isinstance(value, _CONTAINER_TYPES):
        if type(value) is str and len(value) + 2 > limit:
            check_stored_size([value], what, limit)
        return value, type(value) in _PLAIN_SCALARS
    m = check_stored_size(value, what, limit)
    m.budget.charge(m.memo[0][0] // 8)  # the copy's own work, about one item per 8 characters
    return _copy(value), m.plain
