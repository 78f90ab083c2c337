"""Test oracles: the rollups as they should be, recomputed from `orders` and `products`
by SQL that shares nothing with the code that keeps them (app/analytics/rollups.py)."""

# Each rollup, recomputed from scratch.
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
    lag(quantity) OVER w AS prev_sale_quantity,
    (SELECT sum(o.quantity) FROM orders o
     WHERE o.product_id = cells.product_id AND o.created_date <= cells.created_date)
        AS cum_quantity
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
        " prev_sale_quantity, cum_quantity FROM product_daily_sales ORDER BY 1, 2"
    ),
    "product_sales": "SELECT product_id, orders, quantity FROM product_sales ORDER BY 1",
}
