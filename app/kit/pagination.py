"""Keyset cursors and the query parameters of a page."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import date
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, Field

from app.errors import AppError


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
