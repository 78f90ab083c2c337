"""JSON or CSV: `?format=` or the Accept header decides, anything else unsupported is 406."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request
from fastapi.responses import Response

from app.errors import NotAcceptable
from app.kit.csv import csv_response, csv_rows

A = TypeVar("A")


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


def answer_as(
    fmt: Format,
    answer: A,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    filename: str,
    headers: dict[str, str] | None = None,
) -> A | Response:
    """A small answer in the negotiated format: `answer` itself as JSON, or its table
    (`columns`, then `rows`, read only for CSV) as a CSV download."""
    if fmt is Format.JSON:
        return answer
    return csv_response(csv_rows(columns, rows), filename=filename, headers=headers)


def items_as(
    fmt: Format, answer: A, items: Iterable[Any], columns: Sequence[str], *, filename: str
) -> A | Response:
    """`answer_as` for an answer that lists `items`: its CSV has a row per item, of the
    item's `columns` attributes."""
    rows = (tuple(getattr(item, c) for c in columns) for item in items)
    return answer_as(fmt, answer, columns, rows, filename=filename)
