"""Step latency: the one hook through which a service function's duration reaches whoever measures it.

`@observed("complete_task")` on a service function (whose first argument is
the runtime) times each call and hands (operation, seconds, outcome) to every
callable in `rt.observers`: outcome is "ok", or the error's class name. The
HTTP layer's /metrics registers a Prometheus histogram there (api.ops); the
engine itself knows nothing of Prometheus. An observer that raises is logged
and never fails the operation. At DEBUG each call is also a log line (which,
inside a request, carries its request id: engine.logcontext).
"""
from __future__ import annotations

import functools
import logging
import time

log = logging.getLogger(__name__)


def observed(operation: str):
    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(rt, *args, **kwargs):
            observers = getattr(rt, "observers", None)
            if not observers and not log.isEnabledFor(logging.DEBUG):
                return fn(rt, *args, **kwargs)
            started = time.perf_counter()
            outcome = "ok"
            try:
                return fn(rt, *args, **kwargs)
            except BaseException as exc:
                outcome = type(exc).__name__
                raise
            finally:
                elapsed = time.perf_counter() - started
                log.debug("%s %s in %.1f ms", operation, outcome, elapsed * 1000)
                for observer in observers or ():
                    try:
                        observer(operation, elapsed, outcome)
                    except Exception:
                        log.exception("step observer %r failed", observer)

        return wrapper

    return decorate
