"""The SQL of the forecast reads, in SQLAlchemy's `:name` style: the statements the read
endpoints run through sessions (a run's own, in `$n` style, are in queries.py)."""

from __future__ import annotations

from app.forecasting.queries import FAIL_ORPHANS, RUN_COLUMNS

# Readers fail the orphaned runs too (FAIL_ORPHANS), when the lock is free (the
# transaction-level lock is let go at their commit). As dead uploads are swept
# (uploads/sql/reads.py).
SWEEP_DEAD = f"""
{FAIL_ORPHANS} AND pg_try_advisory_xact_lock(:key)
"""

GET_RUN = f"SELECT {RUN_COLUMNS} FROM forecast_runs WHERE run_id = :run_id"

LATEST_RUN = f"SELECT {RUN_COLUMNS} FROM forecast_runs ORDER BY run_id DESC LIMIT 1"

# The run every forecast read serves: the latest that succeeded.
SERVED_RUN = f"""
SELECT {RUN_COLUMNS} FROM forecast_runs WHERE status = 'succeeded' ORDER BY run_id DESC LIMIT 1
"""

# Whether an orders upload that inserted or updated rows is one the served run did not
# see (newer than its snapshot, or running then).
STALE = """
EXISTS (
    SELECT 1 FROM uploads u
    WHERE u.kind = 'orders' AND u.status = 'succeeded'
        AND (u.rows_inserted > 0 OR u.rows_updated > 0)
        AND (u.upload_id > r.seen_upload_id OR u.upload_id = ANY (r.running_uploads))
)
"""

PRODUCT_FORECAST = f"""
WITH r AS (
    SELECT run_id, data_until, seen_upload_id, running_uploads FROM forecast_runs
    WHERE status = 'succeeded' ORDER BY run_id DESC LIMIT 1
)
SELECT r.run_id, r.data_until, p.product_id, p.code, p.name AS product_name, p.category,
    f.model, f.mae, f.rmse, f.mase, f.seasonal_naive_mase, f.coverage_80, f.coverage_95,
    {STALE} AS stale
FROM r
JOIN forecast_products f ON f.run_id = r.run_id AND f.product_id = :product_id
JOIN products p ON p.product_id = f.product_id
"""

PRODUCT_ITEMS = """
SELECT date, quantity, lo_80, hi_80, lo_95, hi_95 FROM predicted_product_demand
WHERE run_id = :run_id AND product_id = :product_id ORDER BY date
"""

# A category's day: the sum of its products' forecasts; each bound is the sum minus (or
# plus) the root of the summed squares of the products' half-widths, as if the products'
# errors were independent (summed bounds would claim every product misses at once).
CATEGORY_ITEMS = """
SELECT d.date, sum(d.quantity) AS quantity,
    greatest(0, sum(d.quantity) - sqrt(sum((d.quantity - d.lo_80) ^ 2))) AS lo_80,
    sum(d.quantity) + sqrt(sum((d.hi_80 - d.quantity) ^ 2)) AS hi_80,
    greatest(0, sum(d.quantity) - sqrt(sum((d.quantity - d.lo_95) ^ 2))) AS lo_95,
    sum(d.quantity) + sqrt(sum((d.hi_95 - d.quantity) ^ 2)) AS hi_95
FROM predicted_product_demand d
JOIN products p ON p.product_id = d.product_id
WHERE d.run_id = :run_id AND p.category = :category
GROUP BY d.date ORDER BY d.date
"""

# The categories of the latest succeeded run, the most units expected first: from the
# levels' own forecasts, or (a run from before them) from the sums of their products'.
RUN_CATEGORIES = """
WITH r AS (
    SELECT run_id FROM forecast_runs WHERE status = 'succeeded' ORDER BY run_id DESC LIMIT 1
),
own AS (
    SELECT l.key AS category, min(l.model) AS model, sum(l.quantity) AS quantity,
        sum(l.unallocated) AS unallocated
    FROM predicted_level_demand l JOIN r USING (run_id)
    WHERE l.level = 'category'
    GROUP BY l.key
),
summed AS (
    SELECT p.category, 'sum_of_products' AS model, sum(d.quantity) AS quantity,
        0::double precision AS unallocated
    FROM predicted_product_demand d JOIN r USING (run_id)
    JOIN products p ON p.product_id = d.product_id
    WHERE NOT EXISTS (SELECT 1 FROM own)
    GROUP BY p.category
),
counted AS (
    SELECT p.category, count(*) AS products
    FROM forecast_products f JOIN r USING (run_id)
    JOIN products p ON p.product_id = f.product_id
    GROUP BY p.category
)
SELECT c.category, c.model, c.quantity, c.unallocated, coalesce(n.products, 0) AS products
FROM (SELECT * FROM own UNION ALL SELECT * FROM summed) c
LEFT JOIN counted n USING (category)
ORDER BY c.quantity DESC, c.category
"""

# A level's forecast in the served run: the run, whether it is stale, how many products
# with a forecast of their own it holds, and its model (null: the run has no such level).
LEVEL_RUN = f"""
WITH r AS (
    SELECT run_id, data_until, seen_upload_id, running_uploads FROM forecast_runs
    WHERE status = 'succeeded' ORDER BY run_id DESC LIMIT 1
)
SELECT r.run_id, r.data_until, {STALE} AS stale,
    (SELECT count(*) FROM forecast_products f JOIN products p USING (product_id)
     WHERE f.run_id = r.run_id AND (:level = 'total' OR p.category = :key)) AS products,
    (SELECT min(l.model) FROM predicted_level_demand l
     WHERE l.run_id = r.run_id AND l.level = :level AND l.key = :key) AS model
FROM r
"""

LEVEL_ITEMS = """
SELECT date, quantity, lo_80, hi_80, lo_95, hi_95, unallocated FROM predicted_level_demand
WHERE run_id = :run_id AND level = :level AND key = :key ORDER BY date
"""

# The products a run forecast, for the dashboard's picker: name and model.
RUN_PRODUCTS = """
SELECT f.product_id, p.code, p.name AS product_name, p.category, f.model, f.mase,
    f.seasonal_naive_mase
FROM forecast_products f JOIN products p USING (product_id)
WHERE f.run_id = :run_id ORDER BY f.product_id
"""

# A product's units per day over the `:days` days up to the run's data_until (sale days
# only: zero-filled by the caller).
PRODUCT_HISTORY = """
SELECT created_date, quantity,
    (SELECT min(created_date) FROM product_daily_sales
     WHERE product_id = :product_id) AS first_sale
FROM product_daily_sales
WHERE product_id = :product_id AND created_date > CAST(:until AS date) - CAST(:days AS integer)
    AND created_date <= :until
ORDER BY created_date
"""

# The total's units per day over the `:days` days up to `:until` (sale days only), and
# the first sale of any product: a level's series is zero-filled from there (levels.py).
# `daily_sales` is `product_daily_sales` summed per day (both are folded from the same
# order deltas) and keyed by the date; the product rollup's key leads with the product,
# so summing it here would read every product's days.
TOTAL_HISTORY = """
SELECT created_date, quantity,
    (SELECT min(created_date) FROM daily_sales) AS first_sale
FROM daily_sales
WHERE created_date > CAST(:until AS date) - CAST(:days AS integer) AND created_date <= :until
ORDER BY created_date
"""

# A category's units per day, the same way: its products' rows of the product rollup
# (found through the category's index, then each product's key), summed per day. The
# category is the product's current one, as the run's level series reads it.
CATEGORY_HISTORY = """
SELECT s.created_date, sum(s.quantity) AS quantity,
    (SELECT min(created_date) FROM daily_sales) AS first_sale
FROM products p
JOIN product_daily_sales s ON s.product_id = p.product_id
WHERE p.category = :category
    AND s.created_date > CAST(:until AS date) - CAST(:days AS integer)
    AND s.created_date <= :until
GROUP BY s.created_date
ORDER BY s.created_date
"""
