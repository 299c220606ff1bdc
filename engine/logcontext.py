"""The request id a log line belongs to, and the JSON log format.

The HTTP layer puts each request's id (its `X-Request-Id`, or a new one) in
`request_id` (a context variable, so each thread and task has its own);
`RequestIdFilter`, attached to the log handlers, copies it onto every record,
so an engine, store or handler log line written while serving that request
names it too. `JsonFormatter` writes one JSON object a line (`LOG_FORMAT=json`,
the default of `flask serve`): time, level, logger, message, request_id, and
the exception when there is one.
"""
from __future__ import annotations

import contextvars
import json
import logging
from datetime import datetime, timezone

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("dispute_request_id", default=None)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "pid": record.process,
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


def configure_logging(level: str, fmt: str = "text", *, force: bool = False) -> None:
    """One root handler on stderr with the request-id filter and the chosen format ("text" or "json").

    Like `logging.basicConfig`, it leaves a root logger that someone else
    already configured (a test runner, an embedding program) alone; called
    again, it re-applies the format to its own handler. `force` (a server
    taking over its process, after Alembic's fileConfig replaced the handlers
    and disabled the loggers it did not name) replaces the root handlers and
    enables every logger again.
    """
    root = logging.getLogger()
    if force:
        for handler in list(root.handlers):
            if not getattr(handler, "_dispute", False):
                root.removeHandler(handler)
        for logger in logging.Logger.manager.loggerDict.values():
            if isinstance(logger, logging.Logger):
                logger.disabled = False
    ours = [h for h in root.handlers if getattr(h, "_dispute", False)]
    if not ours:
        if root.handlers:
            return
        handler = logging.StreamHandler()
        handler._dispute = True
        handler.addFilter(RequestIdFilter())
        root.addHandler(handler)
        ours = [handler]
    root.setLevel(level)
    for handler in ours:
        handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
