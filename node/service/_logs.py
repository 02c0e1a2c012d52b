"""Structured logs: one JSON object per line, with the request's context.

Transports set the context of the call they serve (request id, peer, dataset) with
:func:`log_context`; every log record emitted meanwhile, in this task or in a thread
it hands work to with ``contextvars.copy_context()``, carries those fields::

    {"time": "2025-01-02T03:04:05.123Z", "level": "INFO", "logger": "node.transport.grpc.server",
     "message": "query done", "department": "91110000600037341L", "request_id": "5f3a...",
     "peer": "91110108551385082Q", "method": "Query", "dataset": "population", "records": 500}

Extra fields passed as ``log.info("...", extra={"records": 500})`` are included too.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

__all__ = [
    "JsonFormatter",
    "configure_json_logging",
    "log_context",
    "set_log_fields",
    "current_context",
    "new_request_id",
]

_CONTEXT: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("shulian_log_context",
                                                                                 default=None)

# attributes every LogRecord has: not copied as extra fields
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


def new_request_id() -> str:
    return uuid.uuid4().hex[:16]


def current_context() -> dict[str, Any]:
    return dict(_CONTEXT.get() or {})


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to every log record emitted inside the block (in this context)."""
    merged = {**(_CONTEXT.get() or {}), **{k: v for k, v in fields.items() if v is not None}}
    token = _CONTEXT.set(merged)
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def set_log_fields(**fields: Any) -> None:
    """Add fields to the current context (e.g. the peer, once it is known)."""
    _CONTEXT.set({**(_CONTEXT.get() or {}), **{k: v for k, v in fields.items() if v is not None}})


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line: time, level, logger, message, department, context, extras."""

    def __init__(self, department: str | None = None) -> None:
        super().__init__()
        self.department = department

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.")
            + f"{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.department:
            out["department"] = self.department
        out.update(_CONTEXT.get() or {})
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            out["error_type"] = record.exc_info[0].__name__
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_json_logging(level: str = "INFO", *, department: str | None = None,
                           stream: TextIO | None = None) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) as JSON lines; returns the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(department))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)
    return handler
