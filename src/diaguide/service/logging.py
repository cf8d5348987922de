"""Structured JSON logs. Only ids, routes, codes and timings — never patient text or tokens."""

from __future__ import annotations

import datetime as dt
import json
import logging

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


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ALLOWED:
            if hasattr(record, key):
                out[key] = getattr(record, key)
        return json.dumps(out, ensure_ascii=False)


def configure(level: str = "INFO") -> None:
    """JSON lines on stderr for the `diaguide.service` logger (idempotent)."""
    logger = logging.getLogger("diaguide.service")
    if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = True
