"""Answer formats: JSON or CSV negotiation, streamed CSV, cursors, CSV-injection escaping."""

from __future__ import annotations

import asyncio
import base64
import binascii
import csv
import io
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Annotated, Any

import orjson
from fastapi import Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import Receive, Scope, Send

from app.db import reading_connection, stop_reading
from app.errors import AppError, NotAcceptable

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
# OWASP: a spreadsheet treats a cell starting with these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class Format(StrEnum):
    JSON = "json"
    CSV = "csv"


def negotiate(
    request: Request,
    format: Annotated[
        Format | None,
        Query(description="`json` or `csv`; overrides the Accept header."),
    ] = None,
) -> Format:
    """`?format=` first, then Accept (`text/csv` → CSV); anything else unsupported is 406."""
    if format is not None:
        return format
    accept = request.headers.get("accept", "").strip()
    if not accept:
        return Format.JSON
    ranges = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    for media in ranges:
        if media == "text/csv":
            return Format.CSV
        if media in {"application/json", "application/*", "*/*", "text/*"}:
            return Format.JSON if media != "text/*" else Format.CSV
    raise NotAcceptable(
        "Supported formats are application/json and text/csv.",
        details={"accept": accept[:200]},
    )


FormatDep = Annotated[Format, Depends(negotiate)]


def safe_cell(value: Any) -> Any:
    """Prefix text that a spreadsheet would run as a formula with `'`."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_lines(rows: Iterable[Iterable[Any]]) -> bytes:
    """CSV records (text cells escaped), as UTF-8 bytes, through one writer. Each ends
    with LF; a field holding a line break, a lone CR included, is quoted: Python's csv
    module quotes only its terminator's characters, and a bare CR ends a record for
    every CSV reader (fuzzing found it, issue 25)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
        out.seek(out.tell() - 2)  # the record's own CRLF, never a quoted field's
        out.write("\n")
        out.truncate()
    return out.getvalue().encode()


def csv_line(values: Iterable[Any]) -> bytes:
    """One CSV record (text cells escaped), as UTF-8 bytes."""
    return csv_lines([values])


async def csv_rows(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> AsyncIterator[bytes]:
    """A small answer as CSV (big ones stream from COPY): header, then rows, escaped."""
    yield csv_line(header)
    yield csv_lines(rows)


class CsvResponse(StreamingResponse):
    """A streamed CSV answer whose first chunk is read before the answer starts.

    The bodies acquire their database connection before they yield anything, so a pool
    that is exhausted or a database that is gone still answers 503 with the error shape,
    not a 200 cut short. Whatever happens to the answer, the body is closed after it
    (its COPY cancelled, its connection returned)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = aiter(self.body_iterator)
        try:
            first = await anext(body, b"")
        except BaseException:
            await _close(body)
            raise

        async def primed() -> AsyncIterator[str | bytes | memoryview]:
            yield first
            async for chunk in body:
                yield chunk

        self.body_iterator = primed()
        try:
            await super().__call__(scope, receive, send)
        finally:
            await _close(body)


async def _close(body: AsyncIterator[Any]) -> None:
    close = getattr(body, "aclose", None)
    if close is not None:
        await close()


def csv_response(
    body: AsyncIterator[bytes], *, filename: str, headers: dict[str, str] | None = None
) -> StreamingResponse:
    return CsvResponse(
        body,
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', **(headers or {})},
    )


def json_answer(content: dict[str, Any]) -> Response:
    """A JSON answer rendered by orjson from plain values (dates, ints, strings: money is
    already text), skipping FastAPI's second validation of the response model: for large
    answers, where that costs a Python object per cell. The bytes are the ones pydantic
    writes for the same values (compact, UTF-8, ISO dates)."""
    return Response(orjson.dumps(content), media_type="application/json")


# --- keyset cursors ---------------------------------------------------------------------


class InvalidCursor(AppError):
    status_code = 422
    code = "invalid_cursor"


def encode_cursor(key: Sequence[Any]) -> str:
    """An opaque cursor for a keyset position (ints, strings and dates)."""
    raw = json.dumps(list(key), separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, types: Sequence[type]) -> list[Any]:
    """The key a cursor holds, checked against the expected types; 422 if forged."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(key, list) or len(key) != len(types):
            raise ValueError
        return [_checked(t, v) for t, v in zip(types, key, strict=True)]
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, OverflowError):
        raise InvalidCursor("The cursor is not one this service gave out.") from None


def _checked(expected: type, value: Any) -> Any:
    if expected is date:
        if not isinstance(value, str):
            raise ValueError
        return date.fromisoformat(value)
    if expected is int:
        if type(value) is not int or not -(2**63) <= value < 2**63:
            raise ValueError
        return value
    if not isinstance(value, str) or len(value) > 256:
        raise ValueError
    return expected(value)


MAX_LIMIT = 1000

LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page (≤ 1000).")]
CursorQuery = Annotated[
    str | None, Query(max_length=512, description="`next_cursor` of the previous page.")
]


class PageQuery(BaseModel):
    """The query parameters of a keyset page."""

    limit: int = Field(100, ge=1, le=MAX_LIMIT, description="Items per page (≤ 1000).")
    cursor: str | None = Field(
        None, max_length=512, description="`next_cursor` of the previous page."
    )


# --- money --------------------------------------------------------------------------------

CENT = Decimal("0.01")


def money(value: Decimal | None) -> str | None:
    """Exact 2-place decimal string, rounded half away from zero: `"222.95"`."""
    if value is None:
        return None
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def safe_text_sql(expression: str) -> str:
    """SQL that prefixes `'` to text a spreadsheet would run as a formula (CSV output)."""
    return (
        f"CASE WHEN left({expression}, 1) IN ('=', '+', '-', '@', E'\\t', E'\\r')"
        f" THEN '''' || {expression} ELSE {expression} END"
    )


# --- streaming COPY -------------------------------------------------------------------------

COPY_QUEUE_CHUNKS = 8  # ~8 × 64 KiB in flight at most: memory stays flat however big


async def copy_csv(
    engine: AsyncEngine, query: str, *args: Any, header: bytes = b""
) -> AsyncIterator[bytes]:
    """`header`, then `COPY (query) TO STDOUT (FORMAT csv)`, as a stream of bytes with
    backpressure: the database waits while the client reads slowly, and stops if it goes
    away. Nothing comes out before the connection is had (see CsvResponse)."""
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=COPY_QUEUE_CHUNKS)
    reading: Any = None  # the COPY's connection, once had
    gone = False  # the reader went away: drop what still comes

    async def put(data: bytes | bytearray | memoryview) -> None:
        if not gone:
            await queue.put(bytes(data))

    async def produce() -> None:
        nonlocal reading
        try:
            async with reading_connection(engine) as conn:
                reading = conn
                if header:
                    await put(header)
                await conn.copy_from_query(query, *args, output=put, format="csv")
        finally:
            if not gone:
                await queue.put(None)

    task = asyncio.create_task(produce())
    try:
        while (chunk := await queue.get()) is not None:
            yield chunk
        await task  # its error, if it had one
    finally:
        gone = True
        while not queue.empty():  # a put waiting for room returns
            queue.get_nowait()
        await stop_reading(task, reading)
