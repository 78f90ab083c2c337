"""The SQL behind every KPI and insight: one named query per figure, shared by the JSON
and CSV answers. They read the rollups (kept exact at ingest), never scan `orders`.

Every query takes :start and :end (inclusive; the service passes the widest dates when
the caller gives none). Ties are broken as SPEC section 3 says.
"""

# The day with the most orders; ties: the earliest.
MAX_ORDER_DATE = """
SELECT created_date, orders FROM daily_sales
WHERE created_date BETWEEN :start AND :end
ORDER BY orders DESC, created_date
LIMIT 1
"""

# Units per product over all time (the unfiltered case reads the per-product rollup) or
# within the period: what each had sold through :end minus what it had sold before
# :start. What a product had sold up to a day is the total of the last month before the
# day's month (`units_through_month`) plus the month's own units up to the day (the
# `units_month_to_date` row of the month's last order day before it): four kept rows in
# all, whatever the period's length or the number of days. `until` is the side's first
# day not counted (infinity stays infinity, which asyncpg sends for date.max).
_ALL_TIME = "SELECT product_id, quantity FROM product_sales"
_IN_PERIOD = """
SELECT u.product_id, sum(s.sign * u.quantity)::bigint AS quantity
FROM (
    VALUES (1, CAST(:end AS date), CAST(:end AS date) + 1),
        (-1, CAST(:start AS date), CAST(:start AS date))
) AS s(sign, day, until)
CROSS JOIN LATERAL (
    (
        SELECT m.product_ids, m.quantities FROM units_through_month m
        WHERE m.month < date_trunc('month', s.day::timestamp)::date
        ORDER BY m.month DESC
        LIMIT 1
    )
    UNION ALL
    (
        SELECT d.product_ids, d.quantities FROM units_month_to_date d
        WHERE d.created_date >= date_trunc('month', s.day::timestamp)::date
            AND d.created_date < s.until
        ORDER BY d.created_date DESC
        LIMIT 1
    )
) r
CROSS JOIN unnest(r.product_ids, r.quantities) AS u(product_id, quantity)
GROUP BY u.product_id
HAVING sum(s.sign * u.quantity) > 0
"""

# Both product figures of the KPIs from one pass over the units: the product with the
# most (ties: the lowest product_id; sales: its revenue, each order at the price it was
# sold at, kept per product and day), then the three categories with the most (ties:
# category name ascending), told apart by `figure`.
_PRODUCT_FIGURES = """
WITH units AS MATERIALIZED ({source}),
joined AS MATERIALIZED (
    SELECT s.product_id, s.quantity, p.code, p.name, p.category
    FROM units s JOIN products p ON p.product_id = s.product_id
),
leader AS (
    SELECT product_id, code, name, quantity FROM joined
    ORDER BY quantity DESC, product_id
    LIMIT 1
),
most AS (
    SELECT l.product_id, l.code, l.name, l.quantity, ({revenue}) AS sales_brl FROM leader l
),
top AS (
    SELECT category, sum(quantity)::bigint AS quantity FROM joined
    GROUP BY category
    ORDER BY quantity DESC, category
    LIMIT 3
)
SELECT 'product' AS figure, product_id, code, name, NULL::text AS category, quantity, sales_brl
FROM most
UNION ALL
SELECT 'category', NULL::integer, NULL::text, NULL::text, category, quantity, NULL::numeric
FROM top
"""
_REVENUE_ALL_TIME = "SELECT s.revenue_brl FROM product_sales s WHERE s.product_id = l.product_id"
_REVENUE_IN_PERIOD = """SELECT sum(s.revenue_brl) FROM product_daily_sales s
        WHERE s.product_id = l.product_id AND s.created_date BETWEEN :start AND :end"""
PRODUCT_FIGURES = {
    False: _PRODUCT_FIGURES.format(source=_IN_PERIOD, revenue=_REVENUE_IN_PERIOD),
    True: _PRODUCT_FIGURES.format(source=_ALL_TIME, revenue=_REVENUE_ALL_TIME),
}

# Units per category, the most first (ties: category name ascending): the first :limit
# categories a row each, then every other category summed in one row (category NULL,
# `categories` how many), which is absent when none is left.
_CATEGORY_UNITS = """
WITH per AS (
    SELECT p.category, sum(s.quantity)::bigint AS quantity,
        row_number() OVER (ORDER BY sum(s.quantity) DESC, p.category) AS rank
    FROM ({source}) s JOIN products p ON p.product_id = s.product_id
    GROUP BY p.category
    HAVING sum(s.quantity) > 0
)
SELECT rank, category, quantity, 1 AS categories FROM per
WHERE rank <= CAST(:limit AS integer)
UNION ALL
SELECT CAST(:limit AS integer) + 1, NULL, sum(quantity)::bigint, count(*) FROM per
WHERE rank > CAST(:limit AS integer)
HAVING count(*) > 0
ORDER BY rank
"""
CATEGORY_UNITS = {
    False: _CATEGORY_UNITS.format(source=_IN_PERIOD),
    True: _CATEGORY_UNITS.format(source=_ALL_TIME),
}

# One product's revenue per day (its USD sales in order_date mode).
PRODUCT_DAYS = """
SELECT created_date, revenue_brl FROM product_daily_sales
WHERE product_id = :product_id AND created_date BETWEEN :start AND :end
"""

# Every calendar day from the first to the last order date in the period, zero-filled,
# with the mean revenue of that day and the six before it (fewer at the start).
# The cursor's day travels as text, NULL for the first page: asyncpg sends date.min and
# date.max, which are 0001-01-01 and 9999-12-31, as -infinity and infinity.
DAILY_REVENUE = """
WITH bounds AS (
    SELECT min(created_date) AS lo, max(created_date) AS hi,
        coalesce(to_date(:after, 'YYYY-MM-DD'), '-infinity') AS after
    FROM daily_sales
    WHERE created_date BETWEEN :start AND :end
    HAVING count(*) > 0
),
-- Only the days a page shows, and the six before them for the average: orders on
-- 0001-01-01 and 9999-12-31 would otherwise make every page walk 3.65 million days.
days AS (
    SELECT d::date AS day FROM bounds, generate_series(
        greatest(lo, after - 6),
        least(hi, greatest(lo - 1, after) + CAST(:limit AS integer)),
        interval '1 day') d
),
series AS (
    SELECT days.day, coalesce(s.orders, 0) AS orders, coalesce(s.quantity, 0) AS quantity,
        coalesce(s.revenue_brl, 0) AS revenue_brl,
        avg(coalesce(s.revenue_brl, 0))
            OVER (ORDER BY days.day ROWS BETWEEN 6 PRECEDING AND CURRENT ROW) AS revenue_brl_7d_avg
    FROM days LEFT JOIN daily_sales s ON s.created_date = days.day
)
SELECT series.* FROM series, bounds WHERE day > bounds.after ORDER BY day LIMIT :limit
"""

# Orders and revenue in the period, and per day (USD in order_date mode).
TOTALS = """
SELECT coalesce(sum(orders), 0) AS orders, coalesce(sum(revenue_brl), 0) AS revenue_brl
FROM daily_sales WHERE created_date BETWEEN :start AND :end
"""
REVENUE_DAYS = """
SELECT created_date, revenue_brl FROM daily_sales WHERE created_date BETWEEN :start AND :end
"""
ORDER_DAYS = "SELECT created_date FROM daily_sales WHERE created_date BETWEEN :start AND :end"

_PRODUCT_DAYS_IN_PERIOD = """
SELECT product_id, created_date, quantity FROM product_daily_sales
WHERE created_date BETWEEN :start AND :end
"""


def _named(picked: str) -> str:
    """The top growths `picked` (product_id, date, previous_date, quantity,
    previous_quantity, growth: ordered and limited), each with its product's name and
    code, in the same order. Only the picked rows meet `products`: joining every cell
    before the sort took twice as long."""
    return f"""
SELECT t.product_id, p.name AS product_name, p.code AS product_code, t.date,
    t.previous_date, t.quantity,
    t.previous_quantity, t.growth
FROM ({picked}
) t JOIN products p ON p.product_id = t.product_id
ORDER BY t.growth DESC, t.date, t.product_id
"""


def _from_leaders(where: str) -> str:
    """The top growths among the kept leaders `where` says (an index walk over a few
    rows per day)."""
    return f"""
    SELECT l.product_id, l.created_date AS date, l.previous_date, l.quantity,
        l.previous_quantity, l.growth
    FROM growth_leaders l
    WHERE {where}
    ORDER BY l.growth DESC, l.created_date, l.product_id
    LIMIT :limit"""


# Top growth from the growths ingest keeps in product_daily_sales (an index walk):
# calendar growth on sale days after the first order date of the period (whose day
# before is outside it), and growth since the previous sale when that sale is in the
# period too (as the assessment's LAG over the period sees it).
TOP_GROWTH_CALENDAR_KEPT = _named(
    """
    SELECT s.product_id, s.created_date AS date, s.created_date - 1 AS previous_date,
        s.quantity, s.prev_quantity AS previous_quantity, s.calendar_growth AS growth
    FROM product_daily_sales s
    WHERE s.created_date > (SELECT min(created_date) FROM daily_sales WHERE created_date >= :start)
        AND s.created_date <= :end
    ORDER BY s.calendar_growth DESC, s.created_date, s.product_id
    LIMIT :limit"""
)

# The same from the growth leaders kept per day (exact for a limit up to
# rollups.LEADERS_PER_DAY: every top growth of the period is among its day's leaders),
# an index walk over a few rows per day.
TOP_GROWTH_CALENDAR_LEADERS = _named(
    _from_leaders(
        """l.basis = 'calendar'
        AND l.created_date > (
            SELECT min(created_date) FROM daily_sales WHERE created_date >= :start
        )
        AND l.created_date <= :end"""
    )
)

TOP_GROWTH_PREVIOUS_SALE_LEADERS = _named(
    _from_leaders(
        "l.basis = 'previous_sale' AND l.created_date <= :end AND l.previous_date >= :start"
    )
)

# Whether the previous-sale answer from the leaders may miss a cell: true when a day with
# a full list lost leaders to the period's start (their previous sale is before it), so
# cells never kept, below its last leader, may count, and that last leader ranks before
# the answer's last row (or the answer fell short of its limit: :growth NULL).
LEADERS_CUT = """
SELECT EXISTS (
    SELECT 1 FROM growth_leaders k
    WHERE k.basis = 'previous_sale' AND k.rank = :per_day
        AND k.created_date > :start AND k.created_date <= :end
        AND (CAST(:growth AS bigint) IS NULL
            OR (-k.growth, k.created_date, k.product_id)
                < (-CAST(:growth AS bigint), CAST(:date AS date), CAST(:product_id AS integer)))
        AND EXISTS (
            SELECT 1 FROM growth_leaders f
            WHERE f.basis = 'previous_sale' AND f.created_date = k.created_date
                AND f.previous_date < :start
        )
)
"""

TOP_GROWTH_PREVIOUS_SALE = _named(
    """
    SELECT s.product_id, s.created_date AS date, s.prev_sale_date AS previous_date,
        s.quantity, s.prev_sale_quantity AS previous_quantity, s.sale_growth AS growth
    FROM product_daily_sales s
    WHERE s.sale_growth IS NOT NULL AND s.created_date <= :end AND s.prev_sale_date >= :start
    ORDER BY s.sale_growth DESC, s.created_date, s.product_id
    LIMIT :limit"""
)

FIRST_ORDER_DATE = "SELECT min(created_date) FROM daily_sales WHERE created_date >= :start"

# The exact calendar growth, from the cells: a day without sales counts as 0 and the
# first day of the period has no day before it to grow from. Candidates: every sale day
# and the day after it (where units drop to 0, a day with no row to keep a growth on).
# Used when kept growths fall below zero, where such days may rank.
TOP_GROWTH_CALENDAR = f"""
WITH q AS ({_PRODUCT_DAYS_IN_PERIOD}),
bounds AS (SELECT min(created_date) AS lo, max(created_date) AS hi FROM q),
candidates AS (
    SELECT product_id, created_date AS day FROM q
    UNION
    SELECT q.product_id, q.created_date + 1 FROM q, bounds WHERE q.created_date < bounds.hi
),
growth AS (
    SELECT c.product_id, c.day, c.day - 1 AS previous_date,
        coalesce(cur.quantity, 0) AS quantity, coalesce(prev.quantity, 0) AS previous_quantity
    FROM candidates c
    CROSS JOIN bounds
    LEFT JOIN q cur ON cur.product_id = c.product_id AND cur.created_date = c.day
    LEFT JOIN q prev ON prev.product_id = c.product_id AND prev.created_date = c.day - 1
    WHERE c.day > bounds.lo
)
SELECT g.product_id, p.name AS product_name, p.code AS product_code, g.day AS date,
    g.previous_date, g.quantity,
    g.previous_quantity, g.quantity - g.previous_quantity AS growth
FROM growth g JOIN products p ON p.product_id = g.product_id
ORDER BY growth DESC, g.day, g.product_id
LIMIT :limit
"""

PERIOD = """
SELECT min(created_date) AS first, max(created_date) AS last FROM daily_sales
WHERE created_date BETWEEN :start AND :end
"""
