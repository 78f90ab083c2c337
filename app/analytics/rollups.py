"""Keep the sales rollups exact inside the upload's own transaction: never a refresh.

Callers fill `order_deltas(created_date, product_id, orders, quantity)` or
`price_changes(product_id, delta)` first; these statements fold them in. Revenue is
quantity × the product's current price, so a price change re-prices every stored sale
of that product, day by day, from `product_daily_sales`.
"""

from __future__ import annotations

from typing import Any

# The product-day cells to write: for each product the deltas touch, its stored cells from
# the earliest touched day on merged with the deltas, each with the units of the calendar
# day before and of its previous sale day (computed over the cells, with the last stored
# cell before the touched range in front); and the cells the deltas emptied. The window
# leaves the cells in key order, which the MERGE then writes in (no sort of its own).
PRODUCT_DAY_CELLS = """
CREATE TEMP TABLE product_day_cells ON COMMIT DROP AS
WITH touched AS (
    SELECT product_id, min(created_date) AS since FROM order_deltas GROUP BY product_id
),
anchor AS (
    SELECT t.product_id, a.created_date, a.quantity
    FROM touched t
    CROSS JOIN LATERAL (
        SELECT s.created_date, s.quantity FROM product_daily_sales s
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
        coalesce(s.quantity, 0) + coalesce(d.quantity, 0) AS quantity
    FROM stored s
    FULL JOIN order_deltas d ON d.product_id = s.product_id AND d.created_date = s.created_date
),
live AS (
    SELECT product_id, created_date, orders, quantity, false AS anchor
    FROM merged WHERE orders > 0
    UNION ALL
    SELECT product_id, created_date, 0, quantity, true FROM anchor
),
computed AS (
    SELECT product_id, created_date, orders, quantity, anchor,
        CASE WHEN lag(created_date) OVER w = created_date - 1
            THEN lag(quantity) OVER w ELSE 0 END AS prev_quantity,
        lag(created_date) OVER w AS prev_sale_date,
        lag(quantity) OVER w AS prev_sale_quantity
    FROM live
    WINDOW w AS (PARTITION BY product_id ORDER BY created_date)
)
SELECT product_id, created_date, orders, quantity, prev_quantity, prev_sale_date,
    prev_sale_quantity
FROM computed WHERE NOT anchor
UNION ALL
SELECT product_id, created_date, 0, 0, 0, NULL::date, NULL::bigint FROM merged WHERE orders = 0
"""

APPLY_ORDER_DELTAS = (
    PRODUCT_DAY_CELLS,
    """
MERGE INTO product_daily_sales t
USING product_day_cells c ON t.product_id = c.product_id AND t.created_date = c.created_date
WHEN MATCHED AND c.orders = 0 THEN DELETE
WHEN MATCHED AND (t.orders, t.quantity, t.prev_quantity, t.prev_sale_date, t.prev_sale_quantity)
    IS DISTINCT FROM (c.orders, c.quantity, c.prev_quantity, c.prev_sale_date,
        c.prev_sale_quantity)
    THEN UPDATE SET orders = c.orders, quantity = c.quantity, prev_quantity = c.prev_quantity,
        prev_sale_date = c.prev_sale_date, prev_sale_quantity = c.prev_sale_quantity
WHEN NOT MATCHED AND c.orders > 0 THEN INSERT
    (product_id, created_date, orders, quantity, prev_quantity, prev_sale_date,
        prev_sale_quantity)
    VALUES (c.product_id, c.created_date, c.orders, c.quantity, c.prev_quantity,
        c.prev_sale_date, c.prev_sale_quantity)
""",
    """
MERGE INTO product_sales t
USING (
    SELECT product_id, sum(orders) AS orders, sum(quantity) AS quantity
    FROM order_deltas GROUP BY product_id
) d ON t.product_id = d.product_id
WHEN MATCHED AND t.orders + d.orders = 0 THEN DELETE
WHEN MATCHED THEN UPDATE SET orders = t.orders + d.orders, quantity = t.quantity + d.quantity
WHEN NOT MATCHED THEN INSERT (product_id, orders, quantity)
    VALUES (d.product_id, d.orders, d.quantity)
""",
    """
MERGE INTO daily_sales t
USING (
    SELECT d.created_date, sum(d.orders) AS orders, sum(d.quantity) AS quantity,
        sum(d.quantity * p.price) AS revenue_brl
    FROM order_deltas d JOIN products p ON p.product_id = d.product_id
    GROUP BY d.created_date
) d ON t.created_date = d.created_date
WHEN MATCHED AND t.orders + d.orders = 0 THEN DELETE
WHEN MATCHED THEN UPDATE SET orders = t.orders + d.orders, quantity = t.quantity + d.quantity,
    revenue_brl = t.revenue_brl + d.revenue_brl
WHEN NOT MATCHED THEN INSERT (created_date, orders, quantity, revenue_brl)
    VALUES (d.created_date, d.orders, d.quantity, d.revenue_brl)
""",
)

APPLY_PRICE_CHANGES = """
UPDATE daily_sales t SET revenue_brl = t.revenue_brl + x.delta
FROM (
    SELECT s.created_date, sum(s.quantity * c.delta) AS delta
    FROM product_daily_sales s JOIN price_changes c ON c.product_id = s.product_id
    GROUP BY s.created_date
) x
WHERE t.created_date = x.created_date
"""

# The rollups as they should be, recomputed from `orders` and `products` (tests, checks).
RECOMPUTED = {
    "daily_sales": """
SELECT o.created_date, count(*) AS orders, sum(o.quantity) AS quantity,
    sum(o.quantity * p.price) AS revenue_brl
FROM orders o JOIN products p ON p.product_id = o.product_id
GROUP BY o.created_date ORDER BY 1
""",
    "product_daily_sales": """
WITH cells AS (
    SELECT product_id, created_date, count(*) AS orders, sum(quantity) AS quantity
    FROM orders GROUP BY 1, 2
)
SELECT product_id, created_date, orders, quantity,
    CASE WHEN lag(created_date) OVER w = created_date - 1
        THEN lag(quantity) OVER w ELSE 0 END AS prev_quantity,
    lag(created_date) OVER w AS prev_sale_date,
    lag(quantity) OVER w AS prev_sale_quantity
FROM cells
WINDOW w AS (PARTITION BY product_id ORDER BY created_date)
ORDER BY 1, 2
""",
    "product_sales": """
SELECT product_id, count(*) AS orders, sum(quantity) AS quantity
FROM orders GROUP BY 1 ORDER BY 1
""",
}

STORED = {
    "daily_sales": "SELECT created_date, orders, quantity, revenue_brl FROM daily_sales ORDER BY 1",
    "product_daily_sales": (
        "SELECT product_id, created_date, orders, quantity, prev_quantity, prev_sale_date,"
        " prev_sale_quantity FROM product_daily_sales ORDER BY 1, 2"
    ),
    "product_sales": "SELECT product_id, orders, quantity FROM product_sales ORDER BY 1",
}


async def apply_order_deltas(conn: Any) -> None:
    """Fold `order_deltas` into every rollup (asyncpg connection, inside a transaction)."""
    for statement in APPLY_ORDER_DELTAS:
        await conn.execute(statement)


async def apply_price_changes(conn: Any) -> None:
    """Re-price the stored sales of the products in `price_changes`."""
    await conn.execute(APPLY_PRICE_CHANGES)
