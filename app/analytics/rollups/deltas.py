"""What an upload adds to the rollups: its deltas, per product and day and per basket
and day, in temporary tables of this transaction.

Owns `order_deltas` and `basket_deltas`. Callers add to them with `add_deltas` (orders and
units per product and day, the units valued at the list price and the revenue fixed by
orders' own unit prices: the list price in effect that day is looked up there, in
`product_prices`) and `add_basket_deltas`. A price change is deltas too
(`price_change_deltas`): revenue alone, on each stored cell whose day the change covers,
its list-price units × the difference. The other modules of the package read the deltas
through `DELTAS` and `BASKET_DELTAS`.
"""

from __future__ import annotations

import asyncpg

DELTAS = "order_deltas"
BASKET_DELTAS = "basket_deltas"
TABLES = (DELTAS, BASKET_DELTAS)

CREATE_DELTAS = f"""
CREATE TEMP TABLE {DELTAS} (
    created_date date, product_id integer, orders bigint, quantity bigint,
    list_quantity bigint, revenue_brl numeric
) ON COMMIT DROP
"""

CREATE_BASKET_DELTAS = f"""
CREATE TEMP TABLE {BASKET_DELTAS} (basket text COLLATE "C", created_date date, lines bigint)
ON COMMIT DROP
"""


def add_basket_deltas(select: str) -> str:
    """An INSERT into the baskets' deltas of `select`'s rows: basket, created_date and
    the lines it gains there (negative: loses), at most one row per basket and day."""
    return f"INSERT INTO {BASKET_DELTAS} (basket, created_date, lines)\n{select}"


# The price row in effect on `{day}` for `{product}` (every product has one for any day).
IN_EFFECT = "pp.product_id = {product} AND {day} >= pp.applies_from AND {day} < pp.valid_to"


def add_deltas(select: str) -> str:
    """An INSERT into the deltas (made by `open_deltas`) of `select`'s rows: created_date,
    product_id, orders, quantity, the units valued at the list price, and the revenue
    fixed otherwise (orders' own unit prices, price changes). The revenue is that plus
    the list-price units × the product's price in effect that day; a product without one
    leaves it NULL, which no rollup takes. The rows go in in `select`'s order (the small
    price table is the hash join's inner side; no sort is asked for on top)."""
    return f"""INSERT INTO {DELTAS}
    (created_date, product_id, orders, quantity, list_quantity, revenue_brl)
SELECT x.created_date, x.product_id, x.orders, x.quantity, x.list_quantity,
    x.fixed_brl + x.list_quantity * pp.price
FROM (
{select}
) AS x(created_date, product_id, orders, quantity, list_quantity, fixed_brl)
LEFT JOIN product_prices pp ON {IN_EFFECT.format(product="x.product_id", day="x.created_date")}"""


def price_change_deltas(before: str) -> str:
    """The deltas of a price change: on each stored cell of the products in `before` (a
    table of their price rows before the change, as `product_prices`), its list-price
    units × (the price in effect that day now − before), where that is not zero."""
    return add_deltas(
        f"""SELECT s.created_date, s.product_id, 0, 0, 0, s.list_quantity * (pp.price - o.price)
FROM product_daily_sales s
JOIN {before} o ON o.product_id = s.product_id AND s.created_date >= o.applies_from
    AND s.created_date < o.valid_to
JOIN product_prices pp ON {IN_EFFECT.format(product="s.product_id", day="s.created_date")}
WHERE s.list_quantity > 0 AND pp.price <> o.price"""
    )


async def open_deltas(conn: asyncpg.Connection) -> None:
    """Start this transaction's deltas (empty)."""
    await conn.execute(CREATE_DELTAS)
    await conn.execute(CREATE_BASKET_DELTAS)
