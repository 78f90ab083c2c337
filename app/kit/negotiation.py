"""JSON or CSV: `?format=` or the Accept header decides, anything else unsupported is 406."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Query, Request

from app.errors import NotAcceptable


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
