"""Keyset pagination, one way for every listing: the `limit` and `cursor` query
parameters, a `Keyset` that reads the cursor and cuts the page, and the answer, a `Page[T]`.

A listing reads `limit + 1` rows after the cursor's key, in its key's order; the extra
row only says that more follow. The next page's cursor is the key of the page's last
row, opaque to clients (a forged one is 422 `invalid_cursor`)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from app.errors import AppError

MAX_LIMIT = 1000

T = TypeVar("T")
R = TypeVar("R")


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


def limit_query(what: str = "Items") -> Any:
    """The `limit` of a page, at most MAX_LIMIT; its default is the endpoint's own."""
    return Query(ge=1, le=MAX_LIMIT, description=f"{what} per page (≤ {MAX_LIMIT}).")


LimitQuery = Annotated[int, limit_query()]
CursorQuery = Annotated[
    str | None, Query(max_length=512, description="`next_cursor` of the previous page.")
]
# The cursor of a listing paged by an integer id (`IdKeyset`): that id.
IdCursorQuery = Annotated[
    str | None, Query(pattern=r"^[0-9]{1,18}$", description="`next_cursor` of the previous page")
]


@dataclass(frozen=True)
class Paging:
    """The page a request asks for, where an endpoint reads `limit` and `cursor` in a
    dependency of its own (to keep to six parameters)."""

    limit: int
    cursor: str | None


class Page(BaseModel, Generic[T]):
    """A page of a listing; `next_cursor` is null on the last page."""

    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class Keyset(Generic[R]):
    """How a listing pages: `key` gives a row's key (of `types`, checked when a cursor
    comes back), in the order the rows are read."""

    types: tuple[type, ...]
    key: Callable[[R], Sequence[Any]]

    def after(self, cursor: str | None) -> Any:
        """The key the page starts after: one value, or a tuple for a compound key; None
        for the first page."""
        if not cursor:
            return None
        key = self.decode(cursor)
        return key[0] if len(key) == 1 else tuple(key)

    def cut(self, rows: Sequence[R], limit: int) -> tuple[list[R], str | None]:
        """The page of `rows` (read `limit + 1`), and the next page's cursor: None when
        this is the last."""
        page = list(rows[:limit])
        return page, self.encode(self.key(page[-1])) if len(rows) > limit else None

    def decode(self, cursor: str) -> list[Any]:
        return decode_cursor(cursor, self.types)

    def encode(self, key: Sequence[Any]) -> str:
        return encode_cursor(key)


class IdKeyset(Keyset[R]):
    """Pages by one integer id, the cursor that id in decimal (checked by `IdCursorQuery`)."""

    def decode(self, cursor: str) -> list[Any]:
        return [int(cursor)]

    def encode(self, key: Sequence[Any]) -> str:
        return str(key[0])
