"""Keep the sales rollups exact inside the upload's own transaction: never a refresh.

Callers fill `order_deltas(created_date, product_id, orders, quantity)` or
`price_changes(product_id, delta)` first; these statements fold them in. Revenue is
quantity × the product's current price, so a price change re-prices every stored sale
of that product, day by day, from `product_daily_sales`.
"""

from __future__ import annotations

from typing import Any

APPLY_ORDER_DELTAS = (
    """
MERGE INTO product_daily_sales t
USING order_deltas d ON t.created_date = d.created_date AND t.product_id = d.product_id
WHEN MATCHED AND t.orders + d.orders = 0 THEN DELETE
WHEN MATCHED THEN UPDATE SET orders = t.orders + d.orders, quantity = t.quantity + d.quantity
WHEN NOT MATCHED THEN INSERT (created_date, product_id, orders, quantity)
    VALUES (d.created_date, d.product_id, d.orders, d.quantity)
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
SELECT created_date, product_id, count(*) AS orders, sum(quantity) AS quantity
FROM orders GROUP BY 1, 2 ORDER BY 1, 2
""",
    "product_sales": """
SELECT product_id, count(*) AS orders, sum(quantity) AS quantity
FROM orders GROUP BY 1 ORDER BY 1
""",
}

STORED = {
    "daily_sales": "SELECT created_date, orders, quantity, revenue_brl FROM daily_sales ORDER BY 1",
    "product_daily_sales": (
        "SELECT created_date, product_id, orders, quantity FROM product_daily_sales ORDER BY 1, 2"
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
