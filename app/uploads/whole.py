"""A new-orders file whose every row passes, loaded whole: the verdict (alone, or its
checks split with the upload's summarizer), then every row inserted without a judged
copy of each (`sql.orders.load_whole`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg

from app import db
from app.uploads import fixed_offset
from app.uploads.plan import Plan
from app.uploads.sql import orders

if TYPE_CHECKING:
    from app.uploads.summarizer import Summarizer

# Checked values one connection sends the other at most (`RowChecks.prices`,
# `dates_checked`): a file holds a few hundred distinct dates or prices; past this many,
# checking them again costs less than sending them.
SENT_CHECKS_MAX = 50_000


async def load_whole(
    conn: asyncpg.Connection,
    plan: Plan,
    summarizer: Summarizer | None = None,
) -> tuple[int, int, str | None] | None:
    """Insert every staged order, without a judged copy of each row, if every row passes
    its own checks and every date is good (`orders.verdict`): rows and units inserted
    (with their deltas unless summed aside), and the offset whose date-times were read by
    their date part (`fixed_offset`); None, and nothing inserted, if one does not.
    For a plan of `orders.may_load_whole` whose products are all stored. With a
    `summarizer` (told `go`), the dates checked here are sent to it, and its checks of
    the rows and prices are taken: waited for if it has staged its copy of the file by
    then (`Summarizer.rows_checked`), made here if not."""
    made = await conn.execute(orders.create_whole_dates(plan))
    await conn.execute(orders.ANALYZE_WHOLE_DATES)
    found = None
    if summarizer is not None:
        dated = db.tag_rows(made)
        if dated <= SENT_CHECKS_MAX:
            summarizer.dates_checked((await db.copy_out(conn, orders.SELECT_WHOLE_DATES), dated))
        else:
            summarizer.dates_checked(None)
        found = await summarizer.rows_checked()
    if found is not None:
        if found.prices is not None and (prices := orders.create_whole_prices(plan, to_fill=True)):
            await conn.execute(prices)
            columns = orders.WHOLE_PRICES_COLUMNS
            await db.copy_held_in(conn, orders.WHOLE_PRICES, found.prices, columns)
            await conn.execute(orders.ANALYZE_WHOLE_PRICES)
        rows, units = found.rows, found.units
        whole = found.rows_pass and await conn.fetchval(orders.values_pass(plan))
        offset = found.offset
        await fixed_offset.take(conn, offset)
    else:
        if prices := orders.create_whole_prices(plan):
            await conn.execute(prices)
            await conn.execute(orders.ANALYZE_WHOLE_PRICES)
        rows, units, whole, first, last = await conn.fetchrow(orders.verdict(plan))
        offset = await fixed_offset.settle(conn, plan, first, last, rows) if whole else None
    if not whole:
        return None
    status = await conn.execute(orders.load_whole(plan))
    if status != f"INSERT 0 {rows}":  # every staged row, never fewer
        raise RuntimeError(f"loaded whole, {rows} rows gave {status!r}")
    if not plan.sum_aside:
        await conn.execute(orders.sum_whole(plan, cents=await in_cents(conn, plan, units)))
    return rows, units, offset


async def in_cents(conn: asyncpg.Connection, plan: Plan, units: int) -> bool:
    """Whether a whole file of `units` units may be summed in integer cents
    (`orders.money_in_cents`), on the upload's connection or its summarizer's."""
    query = orders.money_in_cents(plan)
    return query is not None and bool(await conn.fetchval(query, units))
