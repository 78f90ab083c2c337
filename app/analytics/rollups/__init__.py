"""Keep the sales rollups exact inside the upload's own transaction: never a refresh.

This module owns the temporary tables of the fold (`TABLES`). Callers add to
`order_deltas` with `add_deltas` (orders and units per product and day, the units valued
at the list price and the revenue fixed by orders' own unit prices: the list price in
effect that day is looked up there, in `product_prices`); `fold` then writes the
rollups. A price change is deltas too (`price_change_deltas`): revenue alone, on each
stored cell whose day the change covers, its list-price units × the difference.

Folding order deltas in takes two steps: `summarize` turns them into what each rollup
gets (`product_day_cells`, `product_deltas`, `day_deltas`: temporary tables), `write`
merges those into the rollups. Both run on the upload's connection, or the first on a
summarizer's (uploads/summarizer.py), which then `ship`s its sums to the upload's.
"""

from __future__ import annotations

import asyncpg

from app.db import copy_between

DELTAS = "order_deltas"
BASKET_DELTAS = "basket_deltas"
TABLES = (
    DELTAS,
    BASKET_DELTAS,
    "product_day_cells",
    "product_deltas",
    "day_deltas",
    "leader_candidates",
    "leader_days",
    "leader_lists",
    "leader_redo",
    "touched_months",
    "month_to_date_rows",
    "through_month_rows",
)

# Leaders kept per day and basis in `growth_leaders`. Not a setting: it shapes stored
# rows (a change needs them rebuilt, as migration 0005 builds them). Top growth with a
# `limit` up to this reads the leaders; above it, every product-day of the period.
LEADERS_PER_DAY = 25

CREATE_DELTAS = f"""
CREATE TEMP TABLE {DELTAS} (
    created_date date, product_id integer, orders bigint, quantity bigint,
    list_quantity bigint, revenue_brl numeric
) ON COMMIT DROP
"""

CREATE_BASKET_DELTAS = f"""
CREATE TEMP TABLE {BASKET_DELTAS} (basket text, created_date date, lines bigint) ON COMMIT DROP
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


CREATE_SUMS = (
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
    """
CREATE TEMP TABLE leader_candidates (
    basis text, created_date date, product_id integer, quantity bigint, previous_date date,
    previous_quantity bigint, growth bigint, rank smallint, fresh boolean
) ON COMMIT DROP
""",
    "CREATE TEMP TABLE touched_months (month date, next date) ON COMMIT DROP",
    # Arrays stored uncompressed, as in the tables they are made for (compressing eight
    # megabytes of them cost a big upload 0.1 s on each side, for nothing).
    """
CREATE TEMP TABLE month_to_date_rows (LIKE units_month_to_date INCLUDING STORAGE)
ON COMMIT DROP
""",
    """
CREATE TEMP TABLE through_month_rows (LIKE units_through_month INCLUDING STORAGE)
ON COMMIT DROP
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
    FULL JOIN order_deltas d ON d.product_id = s.product_id AND d.created_date = s.created_date
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
        sum(counted) OVER (w ROWS UNBOUNDED PRECEDING) AS cum_quantity
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

# The growth leaders among the cells made, per day and basis, ranked: those of the day's
# new leaders that come from these cells are among them (`write` merges them with the
# leaders kept from untouched cells). `fresh`: the day had no cells, hence no leaders,
# before this upload, so all its cells are here and its candidates are its leaders, whole:
# they are written as they are (a summarizer COPYs them straight into growth_leaders).
# Ranked per basis, by day: a sort keyed on the basis's text as well took three times as
# long (the 1.3 million growths of a million new orders: 2.0 s against 0.75 s).


def _ranked(basis: str, previous_date: str, previous_quantity: str, only: str = "") -> str:
    """One basis's growths of the cells made, the first LEADERS_PER_DAY of each day."""
    return f"""
    SELECT * FROM (
        SELECT '{basis}' AS basis, created_date, product_id, quantity,
            {previous_date} AS previous_date, {previous_quantity} AS previous_quantity,
            quantity - {previous_quantity} AS growth,
            row_number() OVER (
                PARTITION BY created_date ORDER BY quantity - {previous_quantity} DESC, product_id
            ) AS rank
        FROM product_day_cells WHERE orders > 0{only}
    ) ranked WHERE rank <= {LEADERS_PER_DAY}"""


LEADER_CANDIDATES = f"""
INSERT INTO leader_candidates
SELECT r.basis, r.created_date, r.product_id, r.quantity, r.previous_date, r.previous_quantity,
    r.growth, r.rank, k.created_date IS NULL AS fresh
FROM ({_ranked("calendar", "created_date - 1", "prev_quantity")}
    UNION ALL{
    _ranked(
        "previous_sale", "prev_sale_date", "prev_sale_quantity", " AND prev_sale_date IS NOT NULL"
    )
}
) r
LEFT JOIN growth_leaders k
    ON k.basis = 'calendar' AND k.created_date = r.created_date AND k.rank = 1
"""

# The running units (`units_month_to_date`, `units_through_month`: see their models) of
# the months the deltas touch, made again. Three steps, after `day_deltas`:
# - the touched months;
# - their month-to-date rows: on each order day of such a month (after this upload), the
#   stored row of its last order day up to it in the month, plus each touched product's
#   deltas from the first of the month through the day. A product's running delta holds
#   from one of its delta days to the next (or the month's end): it is spread over the
#   days between by a series, not a range join (a big upload's deltas are almost all
#   followed by one the next day: they are not spread at all). A delta day left without
#   orders (an update may move them all away) still counts, but gets no row; nor do the
#   days without orders that a spread covers. With neither a stored row nor deltas to
#   merge, a day's row is the one it has.
# - the month totals from the first touched month on: the stored total of the last month
#   before it, plus the months' own units (each month's last month-to-date row: made
#   again for the touched months, as stored for the others), summed over the months.
_MONTH = "date_trunc('month', {0}::timestamp)::date"
RUNNING_UNITS = (
    f"""
INSERT INTO touched_months
SELECT month, (month + interval '1 month')::date
FROM (SELECT DISTINCT {_MONTH.format("created_date")} AS month FROM day_deltas) m
""",
    f"""
INSERT INTO month_to_date_rows
WITH days AS (
    SELECT coalesce(s.created_date, x.created_date) AS day,
        {_MONTH.format("coalesce(s.created_date, x.created_date)")} AS month
    FROM (
        SELECT d.created_date, d.orders FROM daily_sales d
        JOIN touched_months t ON d.created_date >= t.month AND d.created_date < t.next
    ) s
    FULL JOIN day_deltas x ON x.created_date = s.created_date
    WHERE coalesce(s.orders, 0) + coalesce(x.orders, 0) > 0
),
running AS (
    SELECT product_id, created_date AS day, sum(quantity) OVER w AS quantity,
        coalesce(
            lead(created_date) OVER w,
            ({_MONTH.format("created_date")} + interval '1 month')::date
        ) AS until
    FROM order_deltas
    WINDOW w AS (PARTITION BY product_id, {_MONTH.format("created_date")} ORDER BY created_date)
),
spread AS (
    SELECT day, array_agg(product_id) AS product_ids, array_agg(quantity::bigint) AS quantities
    FROM (
        SELECT day, product_id, quantity FROM running
        UNION ALL
        SELECT g.day::date, r.product_id, r.quantity
        FROM running r
        CROSS JOIN LATERAL generate_series(r.day + 1, r.until - 1, interval '1 day') AS g(day)
        WHERE r.until > r.day + 1
    ) spread
    WHERE quantity <> 0
    GROUP BY day
)
SELECT d.day, coalesce(m.product_ids, x.product_ids, b.product_ids),
    coalesce(m.quantities, x.quantities, b.quantities)
FROM days d
LEFT JOIN spread x ON x.day = d.day
LEFT JOIN LATERAL (
    SELECT r.product_ids, r.quantities FROM units_month_to_date r
    WHERE r.created_date >= d.month AND r.created_date <= d.day
    ORDER BY r.created_date DESC
    LIMIT 1
) b ON true
LEFT JOIN LATERAL (
    SELECT array_agg(product_id) AS product_ids, array_agg(quantity) AS quantities
    FROM (
        SELECT coalesce(o.product_id, n.product_id) AS product_id,
            coalesce(o.quantity, 0) + coalesce(n.quantity, 0) AS quantity
        FROM unnest(b.product_ids, b.quantities) AS o(product_id, quantity)
        FULL JOIN unnest(x.product_ids, x.quantities) AS n(product_id, quantity)
            ON n.product_id = o.product_id
        WHERE b.product_ids IS NOT NULL AND x.product_ids IS NOT NULL
    ) merged
    WHERE quantity <> 0
) m ON true
WHERE x.day IS NOT NULL OR b.product_ids IS NOT NULL
""",
    f"""
INSERT INTO through_month_rows
WITH first AS (SELECT min(month) AS month FROM touched_months),
ends AS (
    SELECT month, max(created_date) AS created_date, bool_or(made) AS made
    FROM (
        SELECT {_MONTH.format("created_date")} AS month, created_date, true AS made
        FROM month_to_date_rows
        UNION ALL
        SELECT {_MONTH.format("r.created_date")}, r.created_date, false
        FROM units_month_to_date r, first
        WHERE r.created_date >= first.month AND NOT EXISTS (
            SELECT 1 FROM touched_months t
            WHERE r.created_date >= t.month AND r.created_date < t.next
        )
    ) days
    GROUP BY month
),
own AS (
    SELECT e.month, u.product_id, u.quantity
    FROM ends e JOIN month_to_date_rows r ON e.made AND r.created_date = e.created_date
    CROSS JOIN unnest(r.product_ids, r.quantities) AS u(product_id, quantity)
    UNION ALL
    SELECT e.month, u.product_id, u.quantity
    FROM ends e JOIN units_month_to_date r ON NOT e.made AND r.created_date = e.created_date
    CROSS JOIN unnest(r.product_ids, r.quantities) AS u(product_id, quantity)
    UNION ALL
    SELECT (SELECT min(month) FROM ends), u.product_id, u.quantity
    FROM first
    CROSS JOIN LATERAL (
        SELECT b.product_ids, b.quantities FROM units_through_month b
        WHERE b.month < first.month
        ORDER BY b.month DESC
        LIMIT 1
    ) b
    CROSS JOIN unnest(b.product_ids, b.quantities) AS u(product_id, quantity)
),
summed AS (SELECT month, product_id, sum(quantity) AS quantity FROM own GROUP BY 1, 2),
running AS (
    SELECT e.month, p.product_id,
        sum(coalesce(s.quantity, 0)) OVER (PARTITION BY p.product_id ORDER BY e.month)
            AS quantity
    FROM ends e
    CROSS JOIN (SELECT DISTINCT product_id FROM summed) p
    LEFT JOIN summed s ON s.month = e.month AND s.product_id = p.product_id
)
SELECT month, array_agg(product_id), array_agg(quantity::bigint)
FROM running WHERE quantity <> 0
GROUP BY month
""",
)

SUMMARIZE = (
    PRODUCT_DAY_CELLS,
    LEADER_CANDIDATES,
    """
INSERT INTO product_deltas
SELECT product_id, sum(orders), sum(quantity), sum(revenue_brl)
FROM order_deltas GROUP BY product_id
""",
    # A day's orders: its lines, less those in baskets, plus the baskets it gains
    # (none of their lines stored that day before) less those it loses (all of them).
    """
INSERT INTO day_deltas
WITH lines AS (
    SELECT created_date, sum(orders) AS orders, sum(quantity) AS quantity,
        sum(revenue_brl) AS revenue_brl
    FROM order_deltas GROUP BY created_date
),
baskets AS (
    SELECT d.created_date, sum(d.lines) AS lines,
        count(*) FILTER (WHERE b.lines IS NULL)
            - count(*) FILTER (WHERE b.lines + d.lines = 0) AS orders
    FROM basket_deltas d
    LEFT JOIN basket_days b ON b.basket = d.basket AND b.created_date = d.created_date
    GROUP BY d.created_date
)
SELECT coalesce(l.created_date, k.created_date),
    coalesce(l.orders, 0) - coalesce(k.lines, 0) + coalesce(k.orders, 0),
    coalesce(l.quantity, 0), coalesce(l.revenue_brl, 0)
FROM lines l FULL JOIN baskets k ON k.created_date = l.created_date
""",
    *RUNNING_UNITS,
)

# The growth leaders of the days the cells fall on, made again. A day's new leaders are the
# best of its kept leaders whose cell was not remade and the candidates. That is exact
# unless the day had a full list whose remade cells fell back: then cells below its old
# last leader, never kept, may belong, and the day is ranked again from all its cells
# (`leader_redo`: one index probe per product and such day).
LEADER_COLUMNS = (
    "basis",
    "created_date",
    "rank",
    "product_id",
    "quantity",
    "previous_date",
    "previous_quantity",
    "growth",
)
_LEADER_LIST = ", ".join(LEADER_COLUMNS)

LEADERS = (
    # Days without leaders before: their candidates, whole (none left after a summarizer,
    # which sent them straight).
    f"""
INSERT INTO growth_leaders ({_LEADER_LIST})
SELECT {_LEADER_LIST} FROM leader_candidates WHERE fresh
""",
    """
CREATE TEMP TABLE leader_days ON COMMIT DROP AS
SELECT created_date FROM product_day_cells UNION SELECT created_date FROM leader_candidates
EXCEPT SELECT created_date FROM leader_candidates WHERE fresh
""",
    f"""
CREATE TEMP TABLE leader_lists ON COMMIT DROP AS
WITH pool AS (
    SELECT l.basis, l.created_date, l.product_id, l.quantity, l.previous_date,
        l.previous_quantity, l.growth
    FROM growth_leaders l JOIN leader_days d ON d.created_date = l.created_date
    WHERE NOT EXISTS (
        SELECT 1 FROM product_day_cells c
        WHERE c.product_id = l.product_id AND c.created_date = l.created_date
    )
    UNION ALL
    SELECT basis, created_date, product_id, quantity, previous_date, previous_quantity, growth
    FROM leader_candidates WHERE NOT fresh
)
SELECT basis, created_date, rank, product_id, quantity, previous_date, previous_quantity,
    growth
FROM (
    SELECT pool.*, row_number() OVER (
        PARTITION BY basis, created_date ORDER BY growth DESC, product_id) AS rank
    FROM pool
) ranked
WHERE rank <= {LEADERS_PER_DAY}
""",
    f"""
CREATE TEMP TABLE leader_redo ON COMMIT DROP AS
SELECT o.basis, o.created_date
FROM growth_leaders o JOIN leader_days d ON d.created_date = o.created_date
WHERE o.rank = {LEADERS_PER_DAY} AND NOT EXISTS (
    SELECT 1 FROM leader_lists n
    WHERE n.basis = o.basis AND n.created_date = o.created_date
        AND n.rank = {LEADERS_PER_DAY} AND (-n.growth, n.product_id) <= (-o.growth, o.product_id)
)
""",
    """
DELETE FROM leader_lists n USING leader_redo r
WHERE n.basis = r.basis AND n.created_date = r.created_date
""",
    f"""
INSERT INTO leader_lists
SELECT basis, created_date, rank, product_id, quantity, previous_date, previous_quantity,
    growth
FROM (
    SELECT g.*, row_number() OVER (
        PARTITION BY basis, created_date ORDER BY growth DESC, product_id) AS rank
    FROM (
        SELECT r.basis, s.created_date, s.product_id, s.quantity,
            CASE WHEN r.basis = 'calendar' THEN s.created_date - 1 ELSE s.prev_sale_date END
                AS previous_date,
            CASE WHEN r.basis = 'calendar' THEN s.prev_quantity ELSE s.prev_sale_quantity END
                AS previous_quantity,
            CASE WHEN r.basis = 'calendar' THEN s.calendar_growth ELSE s.sale_growth END
                AS growth
        FROM leader_redo r
        CROSS JOIN product_sales ps
        JOIN product_daily_sales s
            ON s.product_id = ps.product_id AND s.created_date = r.created_date
    ) g
    WHERE growth IS NOT NULL
) ranked
WHERE rank <= {LEADERS_PER_DAY}
""",
    """
MERGE INTO growth_leaders t
USING leader_lists n
    ON t.basis = n.basis AND t.created_date = n.created_date AND t.rank = n.rank
WHEN MATCHED AND (t.product_id, t.quantity, t.previous_date, t.previous_quantity, t.growth)
    IS DISTINCT FROM (n.product_id, n.quantity, n.previous_date, n.previous_quantity, n.growth)
    THEN UPDATE SET product_id = n.product_id, quantity = n.quantity,
        previous_date = n.previous_date, previous_quantity = n.previous_quantity,
        growth = n.growth
WHEN NOT MATCHED THEN INSERT
    (basis, created_date, rank, product_id, quantity, previous_date, previous_quantity, growth)
    VALUES (n.basis, n.created_date, n.rank, n.product_id, n.quantity, n.previous_date,
        n.previous_quantity, n.growth)
""",
    """
DELETE FROM growth_leaders t USING leader_days d
WHERE t.created_date = d.created_date AND NOT EXISTS (
    SELECT 1 FROM leader_lists n
    WHERE n.basis = t.basis AND n.created_date = t.created_date AND n.rank = t.rank
)
""",
)

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
    """
MERGE INTO product_sales t
USING product_deltas d ON t.product_id = d.product_id
WHEN MATCHED AND t.orders + d.orders = 0 THEN DELETE
WHEN MATCHED THEN UPDATE SET orders = t.orders + d.orders, quantity = t.quantity + d.quantity,
    revenue_brl = t.revenue_brl + d.revenue_brl
WHEN NOT MATCHED THEN INSERT (product_id, orders, quantity, revenue_brl)
    VALUES (d.product_id, d.orders, d.quantity, d.revenue_brl)
""",
    """
MERGE INTO basket_days t
USING basket_deltas d ON t.basket = d.basket AND t.created_date = d.created_date
WHEN MATCHED AND t.lines + d.lines = 0 THEN DELETE
WHEN MATCHED THEN UPDATE SET lines = t.lines + d.lines
WHEN NOT MATCHED THEN INSERT (basket, created_date, lines)
    VALUES (d.basket, d.created_date, d.lines)
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
    """
DELETE FROM units_month_to_date r USING touched_months t
WHERE r.created_date >= t.month AND r.created_date < t.next
""",
    "INSERT INTO units_month_to_date SELECT * FROM month_to_date_rows",
    "DELETE FROM units_through_month WHERE month >= (SELECT min(month) FROM touched_months)",
    "INSERT INTO units_through_month SELECT * FROM through_month_rows",
    *LEADERS,
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

# What a summarizer sends: (query on its connection, table on the upload's, columns).
# Cells not stored yet go straight into `product_daily_sales`, and the leaders of days
# that had none into `growth_leaders`, by COPY: no MERGE to pass through. The rest arrive
# in the upload's own sums tables, for `write`.
SHIPPED = (
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
    ("SELECT * FROM touched_months", "touched_months", ("month", "next")),
    (
        f"SELECT * FROM {BASKET_DELTAS}",
        BASKET_DELTAS,
        ("basket", "created_date", "lines"),
    ),
    (
        "SELECT * FROM month_to_date_rows",
        "month_to_date_rows",
        ("created_date", "product_ids", "quantities"),
    ),
    (
        "SELECT * FROM through_month_rows",
        "through_month_rows",
        ("month", "product_ids", "quantities"),
    ),
    (
        f"SELECT {_LEADER_LIST} FROM leader_candidates WHERE fresh",
        "growth_leaders",
        LEADER_COLUMNS,
    ),
    (
        "SELECT * FROM leader_candidates WHERE NOT fresh",
        "leader_candidates",
        (
            "basis",
            "created_date",
            "product_id",
            "quantity",
            "previous_date",
            "previous_quantity",
            "growth",
            "rank",
            "fresh",
        ),
    ),
)

# Orders and units the sums add up to (checked against what the upload inserted).
SUMMED = "SELECT coalesce(sum(orders), 0), coalesce(sum(quantity), 0) FROM product_deltas"


async def summarize(conn: asyncpg.Connection) -> None:
    """Turn `order_deltas` into the sums each rollup gets (asyncpg connection, inside a
    transaction)."""
    for statement in (*CREATE_SUMS, *SUMMARIZE):
        await conn.execute(statement)


async def write(conn: asyncpg.Connection) -> None:
    """Merge the sums into the rollups."""
    for statement in WRITE:
        await conn.execute(statement)


async def ship(source: asyncpg.Connection, target: asyncpg.Connection) -> None:
    """Send the sums `summarize` made on `source` into `target`'s transaction; `write`
    on `target` then completes the fold."""
    for statement in CREATE_SUMS:
        await target.execute(statement)
    for query, table, columns in SHIPPED:
        await copy_between(source, query, target, table, columns)


async def open_deltas(conn: asyncpg.Connection) -> None:
    """Start this transaction's deltas (empty)."""
    await conn.execute(CREATE_DELTAS)
    await conn.execute(CREATE_BASKET_DELTAS)


async def fold(conn: asyncpg.Connection) -> None:
    """Fold the deltas into the rollups, on this connection."""
    await summarize(conn)
    await write(conn)
