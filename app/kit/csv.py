"""CSV answers: records escaped against spreadsheet formulas, and a streamed response that
starts only once its first chunk is had."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
# OWASP: a spreadsheet treats a cell starting with these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """Prefix text that a spreadsheet would run as a formula with `'`."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_text_sql(expression: str) -> str:
    """SQL that prefixes `'` to text a spreadsheet would run as a formula (CSV output)."""
    return (
        f"CASE WHEN left({expression}, 1) IN ('=', '+', '-', '@', E'\\t', E'\\r')"
        f" THEN '''' || {expression} ELSE {expression} END"
    )


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
