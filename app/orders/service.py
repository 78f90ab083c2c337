"""The merged order view: JSON pages by keyset, and the whole of it streamed as CSV."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.analytics.service import UsdQuery
from app.catalog import keys
from app.fx.service import Conversion
from app.kit.csv import csv_line
from app.kit.money import money
from app.kit.pagination import Keyset
from app.kit.streaming import copy_csv
from app.orders import queries
from app.orders.schemas import OrderLine

# No product's key: integer ids are their own keys (from 1), codes' keys are negative (the
# CHECK `product_id_range`). Filtering by it matches nothing, as an unknown integer id.
NO_PRODUCT = 0


async def product_key(*, session: AsyncSession, product_id: str) -> int:
    """The key that filters by a product id as written (`catalog.keys`): a code no product
    has is NO_PRODUCT, which matches nothing, as an unknown integer does."""
    key = await keys.key_of(session, product_id)
    return NO_PRODUCT if key is None else key


# Pages in (date, order key) order: a coded line's key is not its id as shown.
PAGES = Keyset[Any]((date, int), key=lambda row: (row.order_created_date, row.order_id))


@dataclass
class OrderRows:
    """A page of orders: its lines, the conversion they used, and the next page's cursor
    when more follow."""

    items: list[OrderLine]
    conversion: Conversion | None
    next_cursor: str | None


@dataclass(frozen=True)
class Which:
    """Which orders a page holds: a product (by its key) or category, and the page after
    a cursor."""

    product_id: int | None
    category: str | None
    cursor: str | None
    limit: int


async def page(q: UsdQuery, which: Which) -> OrderRows:
    """Up to `limit` orders after the cursor, in (date, key) order, and where the next
    page starts if more follow."""
    product_id, category, limit = which.product_id, which.category, which.limit
    after_date, after_id = PAGES.after(which.cursor) or (date(1, 1, 1), 0)
    rows = (
        await q.session.execute(
            text(queries.PAGE),
            {
                **q.period.params(),
                "product_id": product_id,
                "category": category,
                "after_date": after_date.isoformat(),
                "after_id": after_id,
                "limit": limit + 1,
            },
        )
    ).all()
    rows, next_cursor = PAGES.cut(rows, limit)
    if not rows:
        return OrderRows([], None, None)
    conv = await q.fx.conversion(q.mode, {r.order_created_date for r in rows})
    items = [
        OrderLine(
            order_id=r.order_code or r.order_id,
            order_created_date=r.order_created_date,
            product_id=r.product_code or r.product_id,
            product_name=r.product_name,
            category=r.category,
            quantity=r.quantity,
            unit_price_brl=money(r.unit_price_brl) or "0.00",
            total_price_brl=money(r.total_price_brl) or "0.00",
            total_price_usd=money(r.total_price_brl * conv.rate_on(r.order_created_date)) or "0.00",
        )
        for r in rows
    ]
    return OrderRows(items, conv, next_cursor)


def rate_args(conv: Conversion) -> list[Any]:
    """The COPY parameters that carry the conversion (see queries._usd)."""
    if conv.latest is not None:
        return [conv.latest.rate]
    days = sorted(conv.by_day)
    return [[d.isoformat() for d in days], [conv.by_day[d].rate for d in days]]


async def stream(
    *, engine: AsyncEngine, header: tuple[str, ...], query: str, args: list[Any]
) -> AsyncIterator[bytes]:
    """A header line, then every row PostgreSQL's COPY writes: flat memory at any size."""
    async for chunk in copy_csv(engine, query, *args, header=csv_line(header)):
        yield chunk
