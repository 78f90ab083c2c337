"""Keep the sales rollups exact inside the upload's own transaction: never a refresh.

An upload adds its deltas (`deltas`: `open_deltas`, `add_deltas`, `add_basket_deltas`,
`price_change_deltas`); `fold` then writes the rollups, family by family: the sales per
product and day, product, day and basket (`sales`), the growth leaders (`leaders`) and
the running units (`running`). Each module owns the temporary tables of its family.

Folding the deltas in takes two steps: `summarize` turns them into what each rollup gets
(temporary tables), `write` merges those into the rollups. Both run on the upload's
connection, or the first on a summarizer's (uploads/summarizer.py), which sends the new
product-day cells and baskets' days, then the new days' leaders (`SENT_EARLY`), as soon as
they are made, and `ship`s the rest of its sums to the upload's at the end.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg

from app.analytics.rollups import deltas, leaders, running, sales
from app.analytics.rollups.deltas import (
    CREATE_BASKET_DELTAS,
    CREATE_DELTAS,
    IN_EFFECT,
    add_basket_deltas,
    add_deltas,
    open_deltas,
    price_change_deltas,
)
from app.analytics.rollups.leaders import LEADERS_PER_DAY
from app.analytics.rollups.sales import SUMMED
from app.db import copy_between

__all__ = [
    "CREATE_BASKET_DELTAS",
    "CREATE_DELTAS",
    "IN_EFFECT",
    "LEADERS_PER_DAY",
    "SENT_EARLY",
    "SUMMED",
    "TEMP_TABLES",
    "add_basket_deltas",
    "add_deltas",
    "fold",
    "open_deltas",
    "price_change_deltas",
    "ship",
    "summarize",
    "write",
]

_FAMILIES = (sales, leaders, running)
# Each temporary table of the fold, with the module that owns it.
TEMP_TABLES = {table: module.__name__ for module in (deltas, *_FAMILIES) for table in module.TABLES}

CREATE_SUMS = tuple(statement for family in _FAMILIES for statement in family.CREATE)
# The product-day cells come first: the other sums read them, and a summarizer sends the
# new ones while it makes the rest. The leaders next (they read the cells alone): a
# summarizer sends those of days that had none while it makes the running units.
SUMMARIZE = (
    sales.PRODUCT_DAY_CELLS,
    *leaders.SUMMARIZE,
    *(statement for statement in sales.SUMMARIZE if statement is not sales.PRODUCT_DAY_CELLS),
    *running.SUMMARIZE,
)
assert SUMMARIZE[:2] == (sales.PRODUCT_DAY_CELLS, leaders.LEADER_CANDIDATES)
# What a summarizer sends as soon as it is made, straight into the rollups, one batch after
# each of the first two statements of `SUMMARIZE` (query on its connection, table on the
# upload's, columns).
SENT_EARLY = (sales.SENT_EARLY, leaders.SENT_EARLY)
# The leaders last: they rank the product-day cells as written.
WRITE = (*sales.WRITE, *running.WRITE, *leaders.WRITE)
# What a summarizer sends: (query on its connection, table on the upload's, columns).
SHIPPED = tuple(shipped for family in _FAMILIES for shipped in family.SHIPPED)


async def summarize(
    conn: asyncpg.Connection, *, made: Callable[[int], Awaitable[None]] | None = None
) -> None:
    """Turn the deltas into the sums each rollup gets (asyncpg connection, inside a
    transaction); `made`, if given, is awaited with each batch's number once what
    `SENT_EARLY` sends in it is made, before the sums after it."""
    for statement in CREATE_SUMS:
        await conn.execute(statement)
    for number, statement in enumerate(SUMMARIZE):
        await conn.execute(statement)
        if made is not None and number < len(SENT_EARLY):
            await made(number)


async def write(conn: asyncpg.Connection) -> None:
    """Merge the sums into the rollups."""
    for statement in WRITE:
        await conn.execute(statement)


async def ship(source: asyncpg.Connection, target: asyncpg.Connection) -> None:
    """Send the sums `summarize` made on `source` into `target`'s transaction, all but
    what `SENT_EARLY` sent before; `write` on `target` then completes the fold."""
    for statement in CREATE_SUMS:
        await target.execute(statement)
    for query, table, columns in SHIPPED:
        await copy_between(source, query, target, table, columns)


async def fold(conn: asyncpg.Connection) -> None:
    """Fold the deltas into the rollups, on this connection."""
    await summarize(conn)
    await write(conn)
