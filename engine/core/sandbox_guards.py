"""Resource guards of the BPMN sandbox: the guarded helpers and the safe builtins.

`engine.core.sandbox` rewrites accepted code so that arithmetic, formatting, method
calls, slices and loops go through the helpers here, which refuse huge
results (ints over `MAX_INT_BITS`, sequences over `MAX_SEQUENCE_LENGTH`) and
stop runaway code (the operation budget and time limit of
`engine.core.sandbox_limits`, charged with what comparing and hashing walk by
`engine.core.sandbox_data`), and it gives the code `SAFE_BUILTINS` only. Kept
apart from the checker so each module reads on its own.
"""
from __future__ import annotations

import math
import operator
import re
from collections.abc import Iterable
from datetime import date, timedelta
from datetime import time as time_of_day
from decimal import Decimal
from itertools import chain

from engine.core.sandbox_data import _scan
from engine.core.sandbox_limits import (  # noqa: F401  (re-exported)
    _BUDGET,
    CACHE_SIZE,
    DATA_ATTRIBUTES,
    MAX_DATA_DEPTH,
    MAX_FORMAT_WIDTH,
    MAX_INT_BITS,
    MAX_RANGE_LENGTH,
    MAX_SEQUENCE_LENGTH,
    MAX_SOURCE_LENGTH,
    MAX_STORED_SIZE,
    MODES,
    MUTATING_METHODS,
    OPERATION_BUDGET,
    SAFE_METHODS,
    TIME_LIMIT_SECONDS,
    SandboxLimitExceeded,
    SandboxViolation,
    _Budget,
    _charge,
)

_SIZED = (str, bytes, bytearray, list, tuple, dict, set, frozenset)
_SEQUENCES = (str, bytes, bytearray, list, tuple)


def _is_int(value) -> bool:
    return isinstance(value, int)


def _too_long(n) -> SandboxLimitExceeded:
    return SandboxLimitExceeded(f"result of {n:,} items exceeds the limit of {MAX_SEQUENCE_LENGTH:,}")


def _too_big() -> SandboxLimitExceeded:
    return SandboxLimitExceeded(f"integer result over {MAX_INT_BITS} bits")


def _check_size(value):
    """Refuse an oversized new value and charge its size to the budget."""
    if _is_int(value):
        if value.bit_length() > MAX_INT_BITS:
            raise _too_big()
    elif isinstance(value, _SIZED):
        if len(value) > MAX_SEQUENCE_LENGTH:
            raise _too_long(len(value))
        _charge(len(value))
    return value


def _check_growth(container, before: int) -> None:
    if len(container) > MAX_SEQUENCE_LENGTH:
        raise _too_long(len(container))
    _charge(max(len(container) - before, 0))


def _repr_fits(value, limit: int = MAX_SEQUENCE_LENGTH) -> bool:
    """Whether str()/repr() of value stays within about `limit` characters, without building it."""
    total = 0
    active: set[int] = set()

    def walk(v, depth: int) -> None:
        nonlocal total
        if isinstance(v, (str, bytes, bytearray)):
            total += len(v) + 3
        elif _is_int(v):
            total += v.bit_length() // 3 + 2
        elif isinstance(v, (list, tuple, set, frozenset, dict)):
            if id(v) in active:  # a cycle prints as [...]
                total += 5
                return
            if depth > MAX_DATA_DEPTH:
                total = limit + 1
                return
            active.add(id(v))
            total += 2
            for item in (chain.from_iterable(v.items()) if isinstance(v, dict) else v):
                walk(item, depth + 1)
                total += 2
                if total > limit:
                    break
            active.discard(id(v))
        else:
            total += 64

    walk(value, 0)
    return total <= limit


def _check_repr(value) -> None:
    if not _repr_fits(value):
        raise SandboxLimitExceeded(f"value too large to format (over {MAX_SEQUENCE_LENGTH:,} characters)")


def _check_widths(numbers: Iterable[str | None]) -> None:
    for digits in numbers:
        if digits == "*":
            raise SandboxLimitExceeded("'*' width in a format is not allowed")
        if digits and (len(digits) > 6 or int(digits) > MAX_FORMAT_WIDTH):
            raise SandboxLimitExceeded(f"format width {digits[:12]} exceeds {MAX_FORMAT_WIDTH:,}")


_PERCENT_SPEC = re.compile(r"%(?:%|(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?)")


def _precheck_mul(a, b) -> None:
    if _is_int(a) and _is_int(b):
        if a.bit_length() + b.bit_length() > MAX_INT_BITS + 1:
            raise _too_big()
        return
    seq, n = (a, b) if _is_int(b) else (b, a)
    if isinstance(seq, _SEQUENCES) and _is_int(n) and n > 0 and len(seq) * n > MAX_SEQUENCE_LENGTH:
        raise _too_long(len(seq) * n)


def _precheck_pow(a, b) -> None:
    if _is_int(a) and _is_int(b) and b > 0 and abs(a) > 1:
        if b > MAX_INT_BITS or math.log2(abs(a)) * b > MAX_INT_BITS:
            raise _too_big()


def _precheck_lshift(a, b) -> None:
    if _is_int(a) and _is_int(b) and a != 0 and b > 0 and a.bit_length() + b > MAX_INT_BITS:
        raise _too_big()


def _precheck_add(a, b) -> None:
    if isinstance(a, _SEQUENCES) and isinstance(b, _SEQUENCES) and len(a) + len(b) > MAX_SEQUENCE_LENGTH:
        raise _too_long(len(a) + len(b))


def _precheck_mod(a, b) -> None:
    if isinstance(a, (str, bytes)):
        text = a.decode("latin-1") if isinstance(a, bytes) else a
        for match in _PERCENT_SPEC.finditer(text):
            _check_widths(match.groups())
        _check_repr(b)


_BINOPS = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "//": operator.floordiv, "%": operator.mod, "**": operator.pow, "<<": operator.lshift,
    ">>": operator.rshift, "|": operator.or_, "&": operator.and_, "^": operator.xor,
}
_INPLACE_OPS = {
    "+": operator.iadd, "-": operator.isub, "*": operator.imul, "/": operator.itruediv,
    "//": operator.ifloordiv, "%": operator.imod, "**": operator.ipow, "<<": operator.ilshift,
    ">>": operator.irshift, "|": operator.ior, "&": operator.iand, "^": operator.ixor,
}
_PRECHECKS = {"*": _precheck_mul, "**": _precheck_pow, "<<": _precheck_lshift, "+": _precheck_add,
              "%": _precheck_mod}


def _guard_binop(op: str, left, right):
    check = _PRECHECKS.get(op)
    if check:
        check(left, right)
    return _check_size(_BINOPS[op](left, right))


def _guard_inplace(op: str, left, right):
    check = _PRECHECKS.get(op)
    if check:
        check(left, right)
    before = len(left) if isinstance(left, _SIZED) else None
    result = _INPLACE_OPS[op](left, right)
    if result is left and before is not None:  # a list or set grown in place
        _check_growth(result, before)
        return result
    return _check_size(result)


def _guard_augitem(op: str, container, key, value) -> None:
    container[key] = _guard_inplace(op, container[key], value)


def _guard_iter(iterable):
    budget = _BUDGET.get() or _Budget()
    for item in iterable:
        budget.charge(1)
        yield item


def _guard_format(value, conversion: int, spec: str | None) -> str:
    _check_repr(value)
    if conversion == ord("r"):
        value = repr(value)
    elif conversion == ord("s"):
        value = str(value)
    elif conversion == ord("a"):
        value = ascii(value)
    if spec:
        _check_widths(re.findall(r"\d+", spec))
    return _check_size(format(value, spec or ""))


def _precheck_join(separator, args):
    items = list(args[0]) if args else []
    total = len(separator) * max(len(items) - 1, 0)
    total += sum(len(item) for item in items if isinstance(item, (str, bytes)))
    if total > MAX_SEQUENCE_LENGTH:
        raise _too_long(total)
    return (items,)


def _precheck_replace(text, args):
    if len(args) >= 2 and all(isinstance(arg, (str, bytes)) for arg in (text, args[0], args[1])):
        old, new = args[0], args[1]
        hits = len(text) + 1 if not old else text.count(old)
        if len(args) > 2 and _is_int(args[2]) and args[2] >= 0:
            hits = min(hits, args[2])
        if len(text) + hits * (len(new) - len(old)) > MAX_SEQUENCE_LENGTH:
            raise _too_long(len(text) + hits * (len(new) - len(old)))
    return args


_METHOD_RECEIVERS = (str, bytes, list, tuple, dict, set, frozenset, int, float, Decimal,
                     date, time_of_day, timedelta)
_METHOD_PRECHECKS = {"join": _precheck_join, "replace": _precheck_replace}
_SCANNING_METHODS = frozenset({"count", "index", "remove", "insert", "pop"})
_GROWING_METHODS = frozenset({"append", "extend", "insert", "update", "setdefault"})
_COPYING_METHODS = frozenset({"copy", "lower", "upper", "strip", "lstrip", "rstrip", "split", "rsplit",
                              "join", "replace", "isoformat"})


def _guard_method(obj, name: str, *args, **kwargs):
    if name not in SAFE_METHODS or not isinstance(obj, _METHOD_RECEIVERS):
        raise SandboxViolation(None, [f"method '{name}' cannot be called on {type(obj).__name__}"])
    for arg in args:  # a key is hashed, an item compared: both expand shared references
        _scan(arg)
    check = _METHOD_PRECHECKS.get(name)
    if check:
        args = check(obj, args)
    elif name in _SCANNING_METHODS:
        _scan(obj)
    before = len(obj) if name in _GROWING_METHODS and isinstance(obj, _SIZED) else None
    result = getattr(obj, name)(*args, **kwargs)
    if before is not None:
        _check_growth(obj, before)
    elif name in _COPYING_METHODS:
        _check_size(result)
    return result

_HELPERS = {
    "_sb_binop": _guard_binop,
    "_sb_inplace": _guard_inplace,
    "_sb_augitem": _guard_augitem,
    "_sb_slice": slice,
    "_sb_iter": _guard_iter,
    "_sb_format": _guard_format,
    "_sb_method": _guard_method,
    "_sb_sized": _check_size,
    "_sb_scan": _scan,
}


# -- safe builtins -----------------------------------------------------------------------

def _sized(constructor):
    def guarded(*args, **kwargs):
        for arg in args:  # hashing and comparing (set, dict, sorted) expands shared references
            _scan(arg)
        return _check_size(constructor(*args, **kwargs))
    guarded.__name__ = guarded.__qualname__ = constructor.__name__
    return guarded


def _scanning(function):
    def guarded(*args, **kwargs):
        for arg in args:  # max(a, b) compares a with b
            _scan(arg)
        return function(*args, **kwargs)
    guarded.__name__ = guarded.__qualname__ = function.__name__
    return guarded


def _safe_range(*args) -> range:
    result = range(*args)
    try:
        n = len(result)
    except OverflowError:
        n = MAX_RANGE_LENGTH + 1
    if n > MAX_RANGE_LENGTH:
        raise SandboxLimitExceeded(f"range of more than {MAX_RANGE_LENGTH:,} items")
    return result


def _safe_str(*args, **kwargs) -> str:
    if args and not kwargs and len(args) == 1:
        _check_repr(args[0])
    return _check_size(str(*args, **kwargs))


def _safe_sum(iterable, /, start=0):
    if not isinstance(start, (int, float, Decimal)):
        raise TypeError("sum() can only add numbers")
    return _check_size(sum(_scan(iterable), start))


def _safe_round(number, ndigits=None):
    if _is_int(ndigits) and abs(ndigits) > 1000:
        raise SandboxLimitExceeded("round() to more than 1000 digits")
    return round(number, ndigits)


SAFE_BUILTINS: dict = {
    "abs": abs, "all": _scanning(all), "any": _scanning(any), "bool": bool, "dict": _sized(dict),
    "enumerate": enumerate, "float": float, "int": _sized(int), "len": len, "list": _sized(list),
    "max": _scanning(max), "min": _scanning(min), "range": _safe_range, "round": _safe_round,
    "set": _sized(set), "sorted": _sized(sorted), "str": _safe_str, "sum": _safe_sum,
    "tuple": _sized(tuple), "zip": zip, "True": True, "False": False, "None": None,
}
_BUILTIN_FUNCTIONS = frozenset(name for name, value in SAFE_BUILTINS.items() if callable(value))
