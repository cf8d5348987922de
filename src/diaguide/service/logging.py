"""Structured JSON logs. Only ids, routes, codes and timings — never patient text or tokens.

Every log line of the service process goes through `JsonFormatter`: the service's own, uvicorn's
and SQLAlchemy's (docs/security.md, "Logs"). It never writes a traceback or an exception's
message — a traceback shows the failing call's arguments and locals, a database error its SQL
parameters, a pydantic error its `input_value`: patient text — only the exception's type. Other
libraries' messages are written without their arguments (uvicorn's access line carries the URL).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import threading

# fields a record may carry in `extra=`; anything else is dropped, so nothing leaks by accident
ALLOWED = (
    "event",
    "request_id",
    "method",
    "route",
    "status",
    "duration_ms",
    "reason",
    "issuer",
    "kid",
    "alg",
    "audit_id",
    "error",
    "user",
    "cards",
)
# loggers that install handlers of their own (uvicorn's default config prints tracebacks): they go to ours
ROUTED = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "sqlalchemy", "sqlalchemy.engine")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        own = record.name == "diaguide" or record.name.startswith("diaguide.")
        out = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage() if own else str(record.msg).strip(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            out["error"] = record.exc_info[0].__name__
        for key in ALLOWED:
            if hasattr(record, key):
                out[key] = getattr(record, key)
        # a lone surrogate (from a request) must not make the line itself fail to be written
        return json.dumps(out, ensure_ascii=False, default=str).encode("utf-8", "backslashreplace").decode("utf-8")


class StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a record comes (a test's capture, a redirected stream)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr


def configure(level: str = "INFO") -> None:
    """JSON lines on stderr for every logger of the process (idempotent).

    One handler on the root logger; uvicorn's and SQLAlchemy's loggers lose any handler of their
    own and propagate to it. uvicorn's access lines (the request's URL and query) are off — the
    middleware logs each request by route template — and so is SQLAlchemy's statement echo.
    """
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = StderrHandler()
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    for name in ROUTED:
        routed = logging.getLogger(name)
        routed.handlers.clear()
        routed.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    service = logging.getLogger("diaguide.service")
    for old in [h for h in service.handlers if isinstance(h.formatter, JsonFormatter)]:
        service.removeHandler(old)  # one line per record: the root handler writes it
    service.setLevel(level)
    service.propagate = True
    threading.excepthook = _thread_died  # Python's default prints the traceback to stderr itself


def _thread_died(args: threading.ExceptHookArgs) -> None:
    """A worker thread's uncaught exception, through the JSON formatter: its type, never its traceback."""
    if args.exc_type is SystemExit:
        return
    logging.getLogger("diaguide.service").error(
        "uncaught exception in a thread",
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        extra={"event": "error"},
    )
