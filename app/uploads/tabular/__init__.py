"""Workbooks (`.xlsx`) and Parquet files as comma-separated UTF-8 text, read where a
crash cannot reach the service.

Both formats are parsed by native code (calamine in Rust, Arrow in C++) that an
untrusted file can drive into a huge allocation, an abort or a long loop. So the parsing
runs in a child process of its own (`child.py`, started by `process.py` for each
upload), under hard limits on its address space, CPU seconds and wall time; it streams
the rows back as CSV. Whatever happens to the child costs that upload, never the service.

This package's own modules import nothing of the service (no FastAPI, SQLAlchemy or
asyncpg): the child starts in tens of milliseconds. `process.py` is the service's side.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

GiB = 1 << 30


@dataclass(frozen=True)
class TabularLimits:
    """What a binary file may cost. Workbooks: what all zip members may unpack to
    (XLSX_MAX_UNPACKED_BYTES) and the cells a sheet may span from A1 (XLSX_MAX_CELLS).
    Both formats: the text the rows may come to (MAX_UPLOAD_BYTES, as for a CSV). The
    reading process: its address space (PARSER_MAX_MEMORY_BYTES), CPU seconds
    (PARSER_MAX_CPU_SECONDS) and wall seconds (PARSER_MAX_SECONDS)."""

    max_unpacked_bytes: int = GiB
    max_cells: int = 20_000_000
    max_text_bytes: int = GiB
    max_memory_bytes: int = 4 * GiB
    max_cpu_seconds: int = 300
    max_seconds: float = 600.0


@dataclass
class Table:
    """Rows as CSV buffers; the lines before the header; warnings for the report."""

    rows: Iterator[bytes]
    line_offset: int = 0
    warnings: list[str] = field(default_factory=list)


class Refused(Exception):
    """The file is refused as a whole: the upload error to answer, as plain data (the
    child cannot build the service's exceptions without importing the service)."""

    def __init__(self, code: str, status: int, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.details = details


def undecodable(message: str, details: Any = None) -> Refused:
    """The bytes are not a readable file of the format (422, as `Undecodable`)."""
    return Refused("undecodable", 422, message, details)


def too_large(
    limit: int,
    *,
    what: str,
    setting: str,
    unit: str = "bytes",
) -> Refused:
    """The file would cost more than a limit allows (413, as `TooLarge`)."""
    return Refused(
        "too_large",
        413,
        f"{what} {limit} {unit} ({setting}).",
        {"max_bytes" if unit == "bytes" else f"max_{unit}": limit},
    )
