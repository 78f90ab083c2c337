"""OpenAPI declarations of the answers that several endpoints share."""

from __future__ import annotations

from typing import Any

from app.errors import DATABASE_DOWN, ErrorResponse

CSV_ALSO = {"content": {"text/csv": {"schema": {"type": "string"}}}}
READ_ERRORS: dict[int | str, dict[str, Any]] = {
    200: CSV_ALSO,
    406: {"model": ErrorResponse, "description": "Unsupported Accept"},
    422: {"model": ErrorResponse, "description": "Bad date, reversed period, bad parameter"},
}
FX_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {
        "model": ErrorResponse,
        "description": "`rate_not_found`: with `fx_mode=order_date`, an order's day has no"
        " published rate on it or within 10 days before it",
    },
    503: {
        "model": ErrorResponse,
        "description": f"`fx_unavailable`: no rate ever known; or {DATABASE_DOWN}",
    },
}
USD_ERRORS: dict[int | str, dict[str, Any]] = {**READ_ERRORS, **FX_ERRORS}
