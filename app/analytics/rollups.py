"""Keep the sales rollups exact inside the upload's own transaction: never a refresh.

This module owns the temporary tables of the fold (`TABLES`). Callers add to
`order_deltas(created_date, product_id, orders, quantity)` with `add_deltas`, or make
`price_changes(product_id, delta)` with `price_changes`; `fold` and `reprice` then write
the rollups. Revenue is
quantity × the product's current price, so a price change re-prices every stored sale
of that product, day by day, from `product_daily_sales`.

Folding order deltas in takes two steps: `summarize` turns them into what each rollup
gets (`product_day_cells`, `product_deltas`, `day_deltas`: temporary tables), `write`
merges those into the rollups. Both run on the upload's connection, or the first on a
summarizer's (uploads/summarizer.py), which then `ship`s its sums to the upload's.
"""

from __future__ import annotations

from typing import Any

from app.db import copy_between

DELTAS = "order_deltas"
PRICE_CHANGES = "price_changes"
TABLES = (DELTAS, PRICE_CHANGES, "product_day_cells", "product_deltas", "day_deltas")

CREATE_DELTAS = f"""
CREATE TEMP TABLE {DELTAS} (
    created_date date, product_id integer, orders bigint, quantity bigint
) ON COMMIT DROP
"""


def add_deltas(select: str) -> str:
    """An INSERT of `select`'s rows (created_date, product_id, orders, quantity) into the
    deltas, made by `open_deltas`."""
    return f"INSERT INTO {DELTAS} (created_date, product_id, orders, quantity)\n{select}"


def price_change_table(select: str) -> str:
    """The statement that makes `price_changes` from `select`'s (product_id, delta)."""
    return f"CREATE TEMP TABLE {PRICE_CHANGES} ON COMMIT DROP AS\n{select}"


CREATE_SUMS = (
    """
CREATE TEMP TABLE product_day_cells (
    product_id integer, created_date date, orders bigint, quantity bigint,
    prev_quantity bigint, prev_sale_date date, prev_sale_quantity bigint, cum_quantity bigint,
    stored boolean
) ON COMMIT DROP
""",
    """
CREATE TEMP TABLE product_deltas (product_id integer, orders bigint, quantity bigint)
ON COMMIT DROP
""",
    """
CREATE TEMP TABLE day_deltas (
    created_date date, orders bigint, quantity bigint, revenue_brl numeric
) ON COMMIT DROP
""",
)

# The product-day cells to write: for each product the deltas touch, its stored cells from
# the earliest touched day on merged with the deltas, each with the units of the calendar
# day before and of its previous sale day (computed over the cells, with the last stored
# cell before the touched range in front), and its running total of units (from the
# anchor's); and the cells the deltas emptied. `stored`:
# whether the cell is stored already (if not, it is written by a plain insert or COPY).
PRODUCT_DAY_CELLS = """
INSERT INTO product_day_cells
WITH touched AS (
    SELECT product_id, min(created_date) AS since FROM order_deltas GROUP BY product_id
),
anchor AS (
    SELECT t.product_id, a.created_date, a.quantity, a.cum_quantity
    FROM touched t
    CROSS JOIN LATERAL (
        SELECT s.created_date, s.quantity, s.cum_quantity FROM product_daily_sales s
        WHERE s.product_id = t.product_id AND s.created_date < t.since
        ORDER BY s.created_date DESC
        LIMIT 1
    ) a
),
stored AS (
    SELECT s.product_id, s.created_date, s.orders, s.quantity
    FROM product_daily_sales s
    JOIN touched t ON t.product_id = s.product_id AND s.created_date >= t.since
),
merged AS (
    SELECT coalesce(s.product_id, d.product_id) AS product_id,
        coalesce(s.created_date, d.created_date) AS created_date,
        coalesce(s.orders, 0) + coalesce(d.orders, 0) AS orders,
        coalesce(s.quantity, 0) + coalesce(d.quantity, 0) AS quantity,
        s.product_id IS NOT NULL AS stored
    FROM stored s
    FULL JOIN order_deltas d ON d.product_id = s.product_id AND d.created_date = s.created_date
),
live AS (
    SELECT product_id, created_date, orders, quantity, quantity AS counted, stored,
        false AS anchor
    FROM merged WHERE orders > 0
    UNION ALL
    SELECT product_id, created_date, 0, quantity, cum_quantity, true, true FROM anchor
),
computed AS (
    SELECT product_id, created_date, orders, quantity, stored, anchor,
        CASE WHEN lag(created_date) OVER w = created_date - 1
            THEN lag(quantity) OVER w ELSE 0 END AS prev_quantity,
        lag(created_date) OVER w AS prev_sale_date,
        lag(quantity) OVER w AS prev_sale_quantity,
        sum(counted) OVER (w ROWS UNBOUNDED PRECEDING) AS cum_quantity
    FROM live
    WINDOW w AS (PARTITION BY product_id ORDER BY created_date)
)
SELECT product_id, created_date, orders, quantity, prev_quantity, prev_sale_date,
    prev_sale_quantity, cum_quantity, stored
FROM computed WHERE NOT anchor
UNION ALL
SELECT product_id, created_date, 0, 0, 0, NULL::date, NULL::bigint, 0, true
FROM merged WHERE orders = 0
"""

SUMMARIZE = (
    PRODUCT_DAY_CELLS,
    """
INSERT INTO product_deltas
SELECT product_id, sum(orders), sum(quantity) FROM order_deltas GROUP BY product_id
""",
    """
INSERT INTO day_deltas
SELECT d.created_date, sum(d.orders), sum(d.quantity), sum(d.quantity * p.price)
FROM order_deltas d JOIN products p ON p.product_id = d.product_id
GROUP BY d.created_date
""",
)

WRITE = (
    """
MERGE INTO product_daily_sales t
USING product_day_cells c ON t.product_id = c.product_id AND t.created_date = c.created_date
WHEN MATCHED AND c.orders = 0 THEN DELETE
WHEN MATCHED AND (t.orders, t.quantity, t.prev_quantity, t.prev_sale_date, t.prev_sale_quantity,
        t.cum_quantity)
    IS DISTINCT FROM (c.orders, c.quantity, c.prev_quantity, c.prev_sale_date,
        c.prev_sale_quantity, c.cum_quantity)
    THEN UPDATE SET orders = c.orders, quantity = c.quantity, prev_quantity = c.prev_quantity,
        prev_sale_date = c.prev_sale_date, prev_sale_quantity = c.prev_sale_quantity,
        cum_quantity = c.cum_quantity
WHEN NOT MATCHED AND c.orders > 0 THEN INSERT
    (product_id, created_date, orders, quantity, prev_quantity, prev_sale_date,
        prev_sale_quantity, cum_quantity)
    VALUES (c.product_id, c.created_date, c.orders, c.quantity, c.prev_quantity,
        c.prev_sale_date, c.prev_sale_quantity, c.cum_quantity)
""",
    """
MERGE INTO product_sales t
USING product_deltas d ON t.product_id = d.product_id
WHEN MATCHED AND t.orders + d.orders = 0 THEN DELETE
WHEN MATCHED THEN UPDATE SET orders = t.orders + d.orders, quantity = t.quantity + d.quantity
WHEN NOT MATCHED THEN INSERT (product_id, orders, quantity)
    VALUES (d.product_id, d.orders, d.quantity)
""",
    """
MERGE INTO daily_sales t
USING day_deltas d ON t.created_date = d.created_date
WHEN MATCHED AND t.orders + d.orders = 0 THEN DELETE
WHEN MATCHED THEN UPDATE SET orders = t.orders + d.orders, quantity = t.quantity + d.quantity,
    revenue_brl = t.revenue_brl + d.revenue_brl
WHEN NOT MATCHED THEN INSERT (created_date, orders, quantity, revenue_brl)
    VALUES (d.created_date, d.orders, d.quantity, d.revenue_brl)
""",
)

_CELL = (
    "product_id",
    "created_date",
    "orders",
    "quantity",
    "prev_quantity",
    "prev_sale_date",
    "prev_sale_quantity",
    "cum_quantity",
)

# What a summarizer sends: (query on its connection, table on the upload's, columns).
# Cells not stored yet go straight into `product_daily_sales`, by COPY: no MERGE to
# pass through. The rest arrive in the upload's own sums tables, for `write`.
SHIPPED = (
    (
        """
SELECT product_id, created_date, orders, quantity, prev_quantity, prev_sale_date,
    prev_sale_quantity, cum_quantity
FROM product_day_cells WHERE NOT stored AND orders > 0
""",
        "product_daily_sales",
        _CELL,
    ),
    (
        "SELECT * FROM product_day_cells WHERE stored OR orders <= 0",
        "product_day_cells",
        (*_CELL, "stored"),
    ),
    ("SELECT * FROM product_deltas", "product_deltas", ("product_id", "orders", "quantity")),
    (
        "SELECT * FROM day_deltas",
        "day_deltas",
        ("created_date", "orders", "quantity", "revenue_brl"),
    ),
)

# Orders and units the sums add up to (checked against what the upload inserted).
SUMMED = "SELECT coalesce(sum(orders), 0), coalesce(sum(quantity), 0) FROM product_deltas"

APPLY_PRICE_CHANGES = """
UPDATE daily_sales t SET revenue_brl = t.revenue_brl + x.delta
FROM (
    SELECT s.created_date, sum(s.quantity * c.delta) AS delta
    FROM product_daily_sales s JOIN price_changes c ON c.product_id = s.product_id
    GROUP BY s.created_date
) x
WHERE t.created_date = x.created_date
"""


async def summarize(conn: Any) -> None:
    """Turn `order_deltas` into the sums each rollup gets (asyncpg connection, inside a
    transaction)."""
    for statement in (*CREATE_SUMS, *SUMMARIZE):
        await conn.execute(statement)


async def write(conn: Any) -> None:
    """Merge the sums into the rollups."""
    for statement in WRITE:
        await conn.execute(statement)


async def ship(source: Any, target: Any) -> None:
    """Send the sums `summarize` made on `source` into `target`'s transaction; `write`
    on `target` then completes the fold."""
    for statement in CREATE_SUMS:
        await target.execute(statement)
    for query, table, columns in SHIPPED:
        await copy_between(source, query, target, table, columns)


async def open_deltas(conn: Any) -> None:
    """Start this transaction's deltas (empty)."""
    await conn.execute(CREATE_DELTAS)


async def fold(conn: Any) -> None:
    """Fold the deltas into the rollups, on this connection."""
    await summarize(conn)
    await write(conn)


async def reprice(conn: Any) -> None:
    """Re-price the stored sales of the products in `price_changes`."""
    await conn.execute(APPLY_PRICE_CHANGES)
