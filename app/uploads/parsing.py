"""The header of an upload (names trimmed, case-insensitive, any order; the file-level
errors), and the careful path's parsing of the data rows with Python's csv module:
every record numbered by the line it starts on (by its record, blank ones counted, for
workbooks and Parquet: `Dialect.numbered_by_records`), rows of the wrong width (and the
original fields of files with extra columns) kept as JSON for the rejects. Which path
the rows take is uploads/staging.py's choice.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import IO

from app.uploads.dialect import DELIMITERS
from app.uploads.errors import (
    DuplicateColumns,
    EmptyFile,
    HeaderTooLong,
    MissingColumns,
    Undecodable,
)
from app.uploads.plan import Plan

BOM = codecs.BOM_UTF8
MAX_HEADER_BYTES = 1024 * 1024
COPY_BUFFER_BYTES = 1024 * 1024
# A row with too many fields keeps at most this many beyond the header's for its reject:
# a line of a million commas then costs the list of its fields while it is read, not
# also their JSON, COPY text and storage (tens of times its size). Its message still
# says how many it had.
MAX_EXTRA_FIELDS_KEPT = 1000

# The same words whichever path found the bad bytes (the header's own say where).
NOT_UTF8 = "The file is not valid UTF-8 (or contains NUL bytes)."

csv.field_size_limit(sys.maxsize)  # the upload limit bounds fields, not the csv module


@dataclass
class Header:
    """The header as received, and where each of the kind's columns it has is (every
    required one, the optional ones it carries)."""

    columns: list[str]
    positions: dict[str, int]
    lines: int  # physical lines the header spans (1 unless a name holds a newline)
    warnings: list[str] = field(default_factory=list)
    delimiter: str = ","

    @property
    def exact(self) -> bool:
        """True when the file has the kind's columns and nothing else."""
        return len(self.columns) == len(self.positions)

    @property
    def order(self) -> tuple[str, ...]:
        """The kind's columns the file has, in the order it has them."""
        return tuple(name for _, name in sorted((i, n) for n, i in self.positions.items()))


def _fields(text: str, delimiter: str) -> list[str]:
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    return rows[0] if rows else []


def sniff_delimiter(text: str, required: tuple[str, ...]) -> str:
    """The delimiter of a header line: of `, ; tab |`, the one that splits it into the
    required columns (the most fields if several do, or if none does); a comma on a tie."""
    best: tuple[bool, int, str] | None = None
    for delimiter in DELIMITERS:
        names = {c.strip().casefold() for c in _fields(text, delimiter)}
        found = all(name in names for name in required)
        score = (found, len(names))
        if best is None or score > best[:2]:
            best = (*score, delimiter)
    assert best is not None
    return best[2]


def parse_header(
    text: str,
    required: tuple[str, ...],
    delimiter: str | None = None,
    renamed: tuple[tuple[str, str], ...] = (),
    optional: tuple[str, ...] = (),
) -> Header:
    """Map the header line to the required columns, or raise the file-level error. The
    delimiter is the one given, or the one the header line shows. `renamed` holds
    (column, the file's name for it) pairs (`?columns=`): the file's column of that name
    is the column, and one of the column's own name is then an extra column. Of the
    `optional` columns, those the file has are mapped too."""
    unknown = sorted({column for column, _ in renamed} - set(required) - set(optional))
    if unknown:
        raise MissingColumns(
            f"?columns= names columns this kind does not have: {', '.join(unknown)}"
            f" (its columns: {', '.join(required + optional)}).",
            details={"unknown": unknown, "required": list(required)},
        )
    source = {column: name.strip().casefold() for column, name in renamed}
    delimiter = delimiter or sniff_delimiter(text, tuple(source.get(r, r) for r in required))
    columns = _fields(text, delimiter)
    lines = text.count("\n") + 1 if text else 1
    if not any(c.strip() for c in columns):
        raise EmptyFile("The file is empty: no header and no rows.")
    target = {name: column for column, name in source.items()}
    # A file's column named as a renamed column is not it: blank, it is an extra column.
    names = [
        target.get(n, "" if n in source else n) for n in (c.strip().casefold() for c in columns)
    ]
    seen: dict[str, int] = {}
    duplicates: list[str] = []
    for index, name in enumerate(names):
        if not name:
            continue
        if name in seen and name not in duplicates:
            duplicates.append(name)
        seen.setdefault(name, index)
    if duplicates:
        raise DuplicateColumns(
            f"Column names appear more than once: {', '.join(duplicates)}.",
            details={"duplicates": duplicates},
        )
    missing = [name for name in required if name not in seen]
    if missing:
        said = [f"{m} (from {source[m]!r})" if m in source else m for m in missing]
        raise MissingColumns(
            f"Required columns are missing: {', '.join(said)}.",
            details={"missing": missing, "required": list(required), "found": columns},
        )
    positions = {name: seen[name] for name in required + optional if name in seen}
    extra = [columns[i] for i, name in enumerate(names) if name not in positions]
    warnings = []
    if extra:
        shown = ", ".join(repr(c) for c in extra[:20])
        more = f" and {len(extra) - 20} more" if len(extra) > 20 else ""
        warnings.append(f"Extra columns ignored: {shown}{more}.")
    return Header(
        columns=columns, positions=positions, lines=lines, warnings=warnings, delimiter=delimiter
    )


async def split_header(chunks: AsyncIterator[bytes]) -> tuple[str, bytes]:
    """Read up to the end of the header record; returns its text and the bytes after it.

    A BOM is dropped. A header whose quotes are open at a newline goes on to the next one.
    """
    buffer = b""
    search_from = 0
    async for chunk in chunks:
        buffer += chunk
        while True:
            end = _line_end(buffer, search_from)
            if end is None:
                break
            head = buffer[:end]
            if head.count(b'"') % 2 == 0:
                rest = buffer[end + 1 :]
                return _decode_header(head), rest
            search_from = end + 1
        if len(buffer) > MAX_HEADER_BYTES:
            raise HeaderTooLong(f"The header line is longer than {MAX_HEADER_BYTES} bytes.")
    return _decode_header(buffer), b""


def _line_end(buffer: bytes, start: int) -> int | None:
    """Index of the first LF (or a CR not followed by LF: old Mac files) from `start`."""
    lf = buffer.find(b"\n", start)
    cr = buffer.find(b"\r", start, lf if lf >= 0 else len(buffer))
    if cr >= 0 and cr + 1 < len(buffer) and buffer[cr + 1 : cr + 2] != b"\n":
        return cr
    return lf if lf >= 0 else None


def _decode_header(raw: bytes) -> str:
    if raw.startswith(BOM):
        raw = raw[len(BOM) :]
    if b"\x00" in raw:
        raise Undecodable("The file contains NUL bytes: it is not text.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Undecodable(
            "The file is not valid UTF-8.", details={"byte_offset": exc.start}
        ) from None
    return text.rstrip("\r\n")


def careful_rows(
    spool: IO[bytes],
    header: Header,
    plan: Plan,
    seen: Callable[[int], None] = lambda _: None,
) -> Iterator[bytes]:
    """Parse the spooled data (UTF-8 text in the plan's delimiter) with Python's csv
    module; yields COPY CSV buffers of `line, bad_count, raw, <the plan's columns…>` rows,
    telling `seen` how many records so far with each. Blank lines are not records."""
    required = plan.columns
    spool.seek(0)
    text = io.TextIOWrapper(spool, encoding="utf-8", errors="strict", newline="")
    reader = csv.reader(text, delimiter=plan.dialect.staged_delimiter)
    out = io.StringIO()
    # CRLF ends each COPY record, so that the writer quotes a field holding a lone CR
    # too (it quotes only its terminator's characters): PostgreSQL's COPY took a bare CR
    # for a record's end, and the upload was a 500 (found by fuzzing, issue 25).
    writer = csv.writer(out, lineterminator="\r\n")
    width = len(header.columns)
    order = [header.positions[name] for name in required]
    keep_raw = not header.exact
    offset = plan.header_lines
    by_records = plan.dialect.numbered_by_records
    records = read = 0  # records; records read, blank ones too (a sheet's empty rows)
    try:
        while True:
            start = (read if by_records else reader.line_num) + 1 + offset
            try:
                row = next(reader)
            except StopIteration:
                break
            read += 1
            if not row:
                continue
            records += 1
            if not records % 128:
                seen(records)  # progress while the file still arrives, not only per buffer
            if len(row) != width:
                kept = row[: width + MAX_EXTRA_FIELDS_KEPT]
                writer.writerow((start, len(row), json.dumps(kept), *([None] * len(order))))
            else:
                raw = json.dumps(row) if keep_raw else None
                writer.writerow((start, None, raw, *[row[i] for i in order]))
            if out.tell() >= COPY_BUFFER_BYTES:
                seen(records)
                yield out.getvalue().encode()
                out.seek(0)
                out.truncate()
    except UnicodeDecodeError:
        raise Undecodable(NOT_UTF8) from None
    except csv.Error as exc:
        if "NUL" in str(exc):
            raise Undecodable(NOT_UTF8) from None
        raise
    finally:
        text.detach()
    seen(records)
    if out.tell():
        yield out.getvalue().encode()
