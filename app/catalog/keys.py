"""A product id as a client writes it, to its key: a canonical whole number within range
is its own key (as uploads read one: `app.uploads.rules.integer_id`); any other text is a
code (issue 27, text ids), looked up."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Path
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import MAX_CODE, MAX_INT4

INTEGER_ID = re.compile(r"[1-9][0-9]{0,9}")
CODE_KEY = "SELECT product_id FROM products WHERE code = :code"

# A path's product id (PostgreSQL text cannot hold NUL: refused here, 422, rather than
# failing there).
ProductIdPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_CODE,
        pattern="^[^\x00]*$",
        description="An integer id, or a text id as the file wrote it",
    ),
]


def integer_key(written: str) -> int | None:
    """The key an integer id is, or None when `written` is a code."""
    if INTEGER_ID.fullmatch(written) and int(written) <= MAX_INT4:
        return int(written)
    return None


async def key_of(session: AsyncSession, written: str) -> int | None:
    """The key of the product `written` names: an integer id's own (stored or not), a
    code's product's, or None for a code no product has."""
    key = integer_key(written)
    if key is not None:
        return key
    found = (await session.execute(text(CODE_KEY), {"code": written})).scalar()
    return None if found is None else int(found)
