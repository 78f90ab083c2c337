"""The sales rollups: each product's day (`product_daily_sales`), each product
(`product_sales`), each day (`daily_sales`) and each basket's day (`basket_days`).

Owns `product_day_cells` (the cells to write: a product's stored cells from the first day
its deltas touch on, merged with them, with the growths and running totals computed over
them), `product_deltas` and `day_deltas`. `SUMMARIZE` makes them from the deltas,
`WRITE` merges them into the rollups, `SENT_EARLY` and `SHIPPED` are what a summarizer
sends of them. The package's other modules name the cells `CELLS` and the day deltas
`DAY_DELTAS`.
"""

from __future__ import annotations

from app.analytics.rollups.deltas import BASKET_DELTAS, DELTAS

CELLS = "product_day_cells"
DAY_DELTAS = "day_deltas"
TABLES = (CELLS, "product_deltas", DAY_DELTAS)

CREATE = (
    """
CREATE TEMP TABLE product_day_cells (
    product_id integer, created_date date, orders bigint, quantity bigint,
    prev_quantity bigint, prev_sale_date date, prev_sale_quantity bigint, cum_quantity bigint,
    list_quantity bigint, revenue_brl numeric, stored boolean
) ON COMMIT DROP
""",
    """
CREATE TEMP TABLE product_deltas (
    product_id integer, orders bigint, quantity bigint, revenue_brl numeric
) ON COMMIT DROP
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
PRODUCT_DAY_CELLS = f"""
INSERT INTO product_day_cells
WITH touched AS (
    SELECT product_id, min(created_date) AS since FROM {DELTAS} GROUP BY product_id
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
    SELECT s.product_id, s.created_date, s.orders, s.quantity, s.list_quantity, s.revenue_brl
    FROM product_daily_sales s
    JOIN touched t ON t.product_id = s.product_id AND s.created_date >= t.since
),
merged AS (
    SELECT coalesce(s.product_id, d.product_id) AS product_id,
        coalesce(s.created_date, d.created_date) AS created_date,
        coalesce(s.orders, 0) + coalesce(d.orders, 0) AS orders,
        coalesce(s.quantity, 0) + coalesce(d.quantity, 0) AS quantity,
        coalesce(s.list_quantity, 0) + coalesce(d.list_quantity, 0) AS list_quantity,
        coalesce(s.revenue_brl, 0) + coalesce(d.revenue_brl, 0) AS revenue_brl,
        s.product_id IS NOT NULL AS stored
    FROM stored s
    FULL JOIN {DELTAS} d ON d.product_id = s.product_id AND d.created_date = s.created_date
),
live AS (
    SELECT product_id, created_date, orders, quantity, quantity AS counted, list_quantity,
        revenue_brl, stored, false AS anchor
    FROM merged WHERE orders > 0
    UNION ALL
    SELECT product_id, created_date, 0, quantity, cum_quantity, 0, 0, true, true FROM anchor
),
computed AS (
    SELECT product_id, created_date, orders, quantity, list_quantity, revenue_brl, stored,
        anchor,
        CASE WHEN lag(created_date) OVER w = created_date - 1
            THEN lag(quantity) OVER w ELSE 0 END AS prev_quantity,
        lag(created_date) OVER w AS prev_sale_date,
        lag(quantity) OVER w AS prev_sale_quantity,
        bigint_sum(counted) OVER (w ROWS UNBOUNDED PRECEDING) AS cum_quantity
    FROM live
    WINDOW w AS (PARTITION BY product_id ORDER BY created_date)
)
SELECT product_id, created_date, orders, quantity, prev_quantity, prev_sale_date,
    prev_sale_quantity, cum_quantity, list_quantity, revenue_brl, stored
FROM computed WHERE NOT anchor
UNION ALL
SELECT product_id, created_date, 0, 0, 0, NULL::date, NULL::bigint, 0, 0, 0, true
FROM merged WHERE orders = 0
"""

SUMMARIZE = (
    PRODUCT_DAY_CELLS,
    f"""
INSERT INTO product_deltas
SELECT product_id, sum(orders), sum(quantity), sum(revenue_brl)
FROM {DELTAS} GROUP BY product_id
""",
    # A day's orders: its lines, less those in baskets, plus the baskets it gains
    # (none of their lines stored that day before) less those it loses (all of them).
    f"""
INSERT INTO day_deltas
WITH lines AS (
    SELECT created_date, sum(orders) AS orders, sum(quantity) AS quantity,
        sum(revenue_brl) AS revenue_brl
    FROM {DELTAS} GROUP BY created_date
),
baskets AS (
    SELECT d.created_date, sum(d.lines) AS lines,
        count(*) FILTER (WHERE b.lines IS NULL)
            - count(*) FILTER (WHERE b.lines + d.lines = 0) AS orders
    FROM {BASKET_DELTAS} d
    LEFT JOIN basket_days b ON b.basket = d.basket AND b.created_date = d.created_date
    GROUP BY d.created_date
)
SELECT coalesce(l.created_date, k.created_date),
    coalesce(l.orders, 0) - coalesce(k.lines, 0) + coalesce(k.orders, 0),
    coalesce(l.quantity, 0), coalesce(l.revenue_brl, 0)
FROM lines l FULL JOIN baskets k ON k.created_date = l.created_date
""",
)


def _add_totals(rollup: str, deltas: str, key: str) -> str:
    """Merge `deltas` into `rollup`, row by `key`: orders, units and revenue added; a
    row left without orders deleted; a new key inserted."""
    return f"""
MERGE INTO {rollup} t
USING {deltas} d ON t.{key} = d.{key}
WHEN MATCHED AND t.orders + d.orders = 0 THEN DELETE
WHEN MATCHED THEN UPDATE SET orders = t.orders + d.orders, quantity = t.quantity + d.quantity,
    revenue_brl = t.revenue_brl + d.revenue_brl
WHEN NOT MATCHED THEN INSERT ({key}, orders, quantity, revenue_brl)
    VALUES (d.{key}, d.orders, d.quantity, d.revenue_brl)
"""


WRITE = (
    """
MERGE INTO product_daily_sales t
USING product_day_cells c ON t.product_id = c.product_id AND t.created_date = c.created_date
WHEN MATCHED AND c.orders = 0 THEN DELETE
WHEN MATCHED AND (t.orders, t.quantity, t.prev_quantity, t.prev_sale_date, t.prev_sale_quantity,
        t.cum_quantity, t.list_quantity, t.revenue_brl)
    IS DISTINCT FROM (c.orders, c.quantity, c.prev_quantity, c.prev_sale_date,
        c.prev_sale_quantity, c.cum_quantity, c.list_quantity, c.revenue_brl)
    THEN UPDATE SET orders = c.orders, quantity = c.quantity, prev_quantity = c.prev_quantity,
        prev_sale_date = c.prev_sale_date, prev_sale_quantity = c.prev_sale_quantity,
        cum_quantity = c.cum_quantity, list_quantity = c.list_quantity,
        revenue_brl = c.revenue_brl
WHEN NOT MATCHED AND c.orders > 0 THEN INSERT
    (product_id, created_date, orders, quantity, prev_quantity, prev_sale_date,
        prev_sale_quantity, cum_quantity, list_quantity, revenue_brl)
    VALUES (c.product_id, c.created_date, c.orders, c.quantity, c.prev_quantity,
        c.prev_sale_date, c.prev_sale_quantity, c.cum_quantity, c.list_quantity, c.revenue_brl)
""",
    _add_totals("product_sales", "product_deltas", "product_id"),
    f"""
MERGE INTO basket_days t
USING {BASKET_DELTAS} d ON t.basket = d.basket AND t.created_date = d.created_date
WHEN MATCHED AND t.lines + d.lines = 0 THEN DELETE
WHEN MATCHED THEN UPDATE SET lines = t.lines + d.lines
WHEN NOT MATCHED THEN INSERT (basket, created_date, lines)
    VALUES (d.basket, d.created_date, d.lines)
""",
    _add_totals("daily_sales", DAY_DELTAS, "created_date"),
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
    "list_quantity",
    "revenue_brl",
)

# What a summarizer sends first, as soon as `PRODUCT_DAY_CELLS` made the cells (query on
# its connection, table on the upload's, columns): what is not stored yet, the cells and
# the baskets' days, straight into the rollups by COPY (no MERGE to pass through; a
# basket day's lines are new orders': more than none). The cells come in key order (the
# windows that made them sorted them); the baskets' days are sorted here, off the upload's
# connection, so that their key's entries are appended, not scattered (migration 0023).
_STORED_BASKET_DAY = (
    "SELECT 1 FROM basket_days b WHERE b.basket = d.basket AND b.created_date = d.created_date"
)
SENT_EARLY = (
    (
        """
SELECT product_id, created_date, orders, quantity, prev_quantity, prev_sale_date,
    prev_sale_quantity, cum_quantity, list_quantity, revenue_brl
FROM product_day_cells WHERE NOT stored AND orders > 0
""",
        "product_daily_sales",
        _CELL,
    ),
    (
        f"SELECT * FROM {BASKET_DELTAS} d WHERE NOT EXISTS ({_STORED_BASKET_DAY})"
        " ORDER BY basket, created_date",
        "basket_days",
        ("basket", "created_date", "lines"),
    ),
)

# What it sends of the rest once all is summed (as `SENT_EARLY`): it arrives in the
# upload's own tables, for `WRITE`.
SHIPPED = (
    (
        "SELECT * FROM product_day_cells WHERE stored OR orders <= 0",
        "product_day_cells",
        (*_CELL, "stored"),
    ),
    (
        "SELECT * FROM product_deltas",
        "product_deltas",
        ("product_id", "orders", "quantity", "revenue_brl"),
    ),
    (
        "SELECT * FROM day_deltas",
        "day_deltas",
        ("created_date", "orders", "quantity", "revenue_brl"),
    ),
    (
        f"SELECT * FROM {BASKET_DELTAS} d WHERE EXISTS ({_STORED_BASKET_DAY})",
        BASKET_DELTAS,
        ("basket", "created_date", "lines"),
    ),
)

# Orders and units the sums add up to (checked against what the upload inserted, before
# any of them is sent).
SUMMED = f"SELECT coalesce(sum(orders), 0), coalesce(sum(quantity), 0) FROM {DELTAS}"
