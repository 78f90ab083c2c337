"""Test oracles: the rollups as they should be, recomputed from `orders` and
`product_prices` by SQL that shares nothing with the code that keeps them
(app/analytics/rollups.py)."""

# Each order with what it was sold for: its own unit price, else the price of its
# product's latest `valid_from` on or before its date, else (a date before them all) its
# first price. Read from the dates alone (not the kept ranges, `valid_to` and
# `applies_from`, that the code looks prices up by).
SOLD = """
SELECT o.*, o.unit_price IS NULL AS listed, o.quantity * coalesce(o.unit_price, (
    SELECT pp.price FROM product_prices pp WHERE pp.product_id = o.product_id
    ORDER BY pp.valid_from <= o.created_date DESC,
        CASE WHEN pp.valid_from <= o.created_date THEN pp.valid_from END DESC,
        pp.valid_from
    LIMIT 1
)) AS revenue
FROM orders o
"""

# Each rollup, recomputed from scratch.
RECOMPUTED = {
    "daily_sales": f"""
SELECT created_date,
    count(DISTINCT basket) + count(*) FILTER (WHERE basket IS NULL) AS orders,
    sum(quantity) AS quantity, sum(revenue) AS revenue_brl
FROM ({SOLD}) o
GROUP BY created_date ORDER BY 1
""",
    "basket_days": """
SELECT basket, created_date, count(*) FROM orders WHERE basket IS NOT NULL
GROUP BY 1, 2 ORDER BY 1, 2
""",
    "product_daily_sales": f"""
WITH cells AS (
    SELECT product_id, created_date, count(*) AS orders, sum(quantity) AS quantity,
        coalesce(sum(quantity) FILTER (WHERE listed), 0) AS list_quantity,
        sum(revenue) AS revenue_brl
    FROM ({SOLD}) o GROUP BY 1, 2
)
SELECT product_id, created_date, orders, quantity, list_quantity, revenue_brl,
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
    # The top growths per day and basis (growth descending, then product_id).
    "growth_leaders": """
WITH cells AS (
    SELECT product_id, created_date, sum(quantity) AS quantity FROM orders GROUP BY 1, 2
),
grown AS (
    SELECT product_id, created_date, quantity,
        CASE WHEN lag(created_date) OVER w = created_date - 1
            THEN lag(quantity) OVER w ELSE 0 END AS day_before,
        lag(created_date) OVER w AS sale_before, lag(quantity) OVER w AS sold_before
    FROM cells
    WINDOW w AS (PARTITION BY product_id ORDER BY created_date)
),
growths AS (
    SELECT 'calendar' AS basis, created_date, product_id, quantity,
        created_date - 1 AS previous_date, day_before AS previous_quantity,
        quantity - day_before AS growth
    FROM grown
    UNION ALL
    SELECT 'previous_sale', created_date, product_id, quantity, sale_before, sold_before,
        quantity - sold_before
    FROM grown WHERE sale_before IS NOT NULL
)
SELECT basis, created_date, rank, product_id, quantity, previous_date::text,
    previous_quantity, growth
FROM (
    SELECT growths.*, rank() OVER (
        PARTITION BY basis, created_date ORDER BY growth DESC, product_id) AS rank
    FROM growths
) ranked
WHERE rank <= 25
ORDER BY 1, 2, 3
""",
    "product_sales": f"""
SELECT product_id, count(*) AS orders, sum(quantity) AS quantity, sum(revenue) AS revenue_brl
FROM ({SOLD}) o GROUP BY 1 ORDER BY 1
""",
    # Per order day, each product's units from the first of its month through it.
    "units_month_to_date": """
SELECT d.created_date, o.product_id, sum(o.quantity) AS quantity
FROM (SELECT DISTINCT created_date FROM orders) d
JOIN orders o ON o.created_date <= d.created_date
    AND o.created_date >= date_trunc('month', d.created_date::timestamp)::date
GROUP BY 1, 2 ORDER BY 1, 2
""",
    # Per month with orders, each product's units through its last day.
    "units_through_month": """
SELECT m.month, o.product_id, sum(o.quantity) AS quantity
FROM (SELECT DISTINCT date_trunc('month', created_date::timestamp)::date AS month FROM orders) m
JOIN orders o ON o.created_date < (m.month + interval '1 month')::date
GROUP BY 1, 2 ORDER BY 1, 2
""",
}

STORED = {
    "daily_sales": "SELECT created_date, orders, quantity, revenue_brl FROM daily_sales ORDER BY 1",
    "product_daily_sales": (
        "SELECT product_id, created_date, orders, quantity, list_quantity, revenue_brl,"
        " prev_quantity, prev_sale_date, prev_sale_quantity, cum_quantity"
        " FROM product_daily_sales ORDER BY 1, 2"
    ),
    "growth_leaders": (
        # As text: the day before 0001-01-01 is 0001-12-31 BC, which Python has no date for.
        "SELECT basis, created_date, rank, product_id, quantity, previous_date::text,"
        " previous_quantity, growth FROM growth_leaders ORDER BY 1, 2, 3"
    ),
    "product_sales": (
        "SELECT product_id, orders, quantity, revenue_brl FROM product_sales ORDER BY 1"
    ),
    "basket_days": "SELECT basket, created_date, lines FROM basket_days ORDER BY 1, 2",
    # The arrays as rows (their order is not part of what is kept).
    "units_month_to_date": (
        "SELECT r.created_date, u.product_id, u.quantity FROM units_month_to_date r,"
        " unnest(r.product_ids, r.quantities) AS u(product_id, quantity) ORDER BY 1, 2"
    ),
    "units_through_month": (
        "SELECT r.month, u.product_id, u.quantity FROM units_through_month r,"
        " unnest(r.product_ids, r.quantities) AS u(product_id, quantity) ORDER BY 1, 2"
    ),
}
