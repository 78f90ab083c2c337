"""The running units: each product's units from the first of the month through each
order day (`units_month_to_date`), and through each month since the first
(`units_through_month`), as arrays per day and per month (see their models).

Owns `touched_months`, `month_to_date_rows` and `through_month_rows`: the rows of the
months the deltas touch, made again. `SUMMARIZE` makes them (after the day deltas),
`WRITE` puts them in place of the stored ones, `SHIPPED` is what a summarizer sends.
"""

from __future__ import annotations

from app.analytics.rollups.deltas import DELTAS
from app.analytics.rollups.sales import DAY_DELTAS

TABLES = ("touched_months", "month_to_date_rows", "through_month_rows")

CREATE = (
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

# The months the deltas touch, made again in three steps (after the day deltas):
# - the touched months;
# - their month-to-date rows: on each order day of such a month (after this upload), the
#   stored row of its last order day up to it in the month, plus each touched product's
#   deltas from the first of the month through the day (an integer running sum:
#   `bigint_sum`, migration 0024). A product's running delta holds from one of its delta
#   days to the next (or the month's end): it is spread over the days between by a
#   series of day counts, not a range join (a big upload's deltas are almost all
#   followed by one the next day: they are not spread at all). A delta day left without
#   orders (an update may move them all away) still counts, but gets no row; nor do the
#   days without orders that a spread covers. With neither a stored row nor deltas to
#   merge, a day's row is the one it has.
# - the month totals from the first touched month on: the stored total of the last month
#   before it, plus the months' own units (each month's last month-to-date row: made
#   again for the touched months, as stored for the others), summed over the months.
_MONTH = "date_trunc('month', {0}::timestamp)::date"
SUMMARIZE = (
    f"""
INSERT INTO touched_months
SELECT month, (month + interval '1 month')::date
FROM (SELECT DISTINCT {_MONTH.format("created_date")} AS month FROM {DAY_DELTAS}) m
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
    FULL JOIN {DAY_DELTAS} x ON x.created_date = s.created_date
    WHERE coalesce(s.orders, 0) + coalesce(x.orders, 0) > 0
),
running AS (
    SELECT product_id, created_date AS day, bigint_sum(quantity) OVER w AS quantity,
        coalesce(
            lead(created_date) OVER w,
            ({_MONTH.format("created_date")} + interval '1 month')::date
        ) AS until
    FROM {DELTAS}
    WINDOW w AS (PARTITION BY product_id, {_MONTH.format("created_date")} ORDER BY created_date)
),
spread AS (
    SELECT day, array_agg(product_id) AS product_ids, array_agg(quantity) AS quantities
    FROM (
        SELECT day, product_id, quantity FROM running
        UNION ALL
        SELECT r.day + g.days, r.product_id, r.quantity
        FROM running r
        CROSS JOIN LATERAL generate_series(1, r.until - r.day - 1) AS g(days)
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

WRITE = (
    """
DELETE FROM units_month_to_date r USING touched_months t
WHERE r.created_date >= t.month AND r.created_date < t.next
""",
    "INSERT INTO units_month_to_date SELECT * FROM month_to_date_rows",
    "DELETE FROM units_through_month WHERE month >= (SELECT min(month) FROM touched_months)",
    "INSERT INTO units_through_month SELECT * FROM through_month_rows",
)

# What a summarizer sends of these (as `sales.SHIPPED`).
SHIPPED = (
    ("SELECT * FROM touched_months", "touched_months", ("month", "next")),
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
)
