"""The SQL of forecasting: what a run reads and writes, and what the reads serve.

Statements with `$n` run on a run's own asyncpg connection; those with `:name` through
SQLAlchemy sessions (the read endpoints)."""

from __future__ import annotations

from app.kit.csv import safe_text_sql

# One run at a time across every worker and the CLI: a session advisory lock held by the
# run's own connection for as long as it computes (so a dead process frees it).
FORECAST_LOCK_KEY = 0x4F4C_0002_0000_0001

TRY_LOCK = "SELECT pg_try_advisory_lock($1)"
UNLOCK = "SELECT pg_advisory_unlock($1)"

RUN_COLUMNS = """
run_id, status, started_at, finished_at, data_until, horizon, engine, products, progress,
models, accuracy, error, left_out, stage
"""

# Whoever holds the lock may fail any run still marked running: its process is gone.
FAIL_ORPHANS = """
UPDATE forecast_runs SET status = 'failed', finished_at = clock_timestamp(),
    error = jsonb_build_object('code', 'interrupted', 'message',
        'The run stopped before it finished (its process or connection died).')
WHERE status = 'running'
"""

# Readers do the same when the lock is free (the transaction-level lock is let go at
# their commit). As dead uploads are swept (uploads/sql/reads.py).
SWEEP_DEAD = f"""
{FAIL_ORPHANS} AND pg_try_advisory_xact_lock(:key)
"""

RUNNING_RUN = (
    "SELECT run_id FROM forecast_runs WHERE status = 'running' ORDER BY run_id DESC LIMIT 1"
)

INSERT_RUN = f"""
INSERT INTO forecast_runs (horizon, engine) VALUES ($1, $2) RETURNING {RUN_COLUMNS}
"""

# What the run sees, read in one REPEATABLE READ snapshot with the series: the latest
# order date up to today (the database's), the first day of history ($1 days up to it),
# the orders left out on either side, and the uploads it saw (for `stale`). Orders dated
# after today are not demand yet (or a typo: 2999-12-31); leaving them out also keeps
# every date a run hands to pandas within its range.
SNAPSHOT = """
WITH bounds AS (
    SELECT until, until - ($1::int - 1) AS since
    FROM (SELECT max(created_date) AS until FROM daily_sales
          WHERE created_date <= current_date) AS latest
)
SELECT bounds.until AS data_until, bounds.since AS history_from, current_date AS today,
    after.orders AS after_orders, after.units AS after_units, after.first AS after_first,
    after.last AS after_last, before.orders AS before_orders, before.units AS before_units,
    coalesce((SELECT max(upload_id) FROM uploads), 0) AS seen_upload_id,
    coalesce((SELECT array_agg(upload_id) FROM uploads WHERE status = 'running'),
        '{}'::bigint[]) AS running_uploads
FROM bounds,
    LATERAL (SELECT coalesce(sum(orders), 0) AS orders, coalesce(sum(quantity), 0) AS units,
                    min(created_date) AS first, max(created_date) AS last
             FROM daily_sales WHERE created_date > current_date) AS after,
    LATERAL (SELECT coalesce(sum(orders), 0) AS orders, coalesce(sum(quantity), 0) AS units
             FROM daily_sales WHERE created_date < bounds.since) AS before
"""

# The sparse daily series, from the rollup (never a scan of orders), within the history.
SALE_CELLS = """
SELECT product_id, created_date, quantity FROM product_daily_sales
WHERE created_date BETWEEN $1 AND $2
"""

PRODUCTS = "SELECT product_id, category, price FROM products"

RECORD_SNAPSHOT = """
UPDATE forecast_runs SET data_until = $2, seen_upload_id = $3, running_uploads = $4,
    left_out = $5::jsonb
WHERE run_id = $1
"""

SET_PROGRESS = """
UPDATE forecast_runs SET progress = $2, stage = $3 WHERE run_id = $1 AND status = 'running'
"""

SUCCEED = """
UPDATE forecast_runs SET status = 'succeeded', finished_at = clock_timestamp(), progress = 1,
    stage = 'done', products = $2, models = $3::jsonb, accuracy = $4::jsonb
WHERE run_id = $1
"""

# The run's own account of why it failed replaces a reader's sweep, which can only say
# `interrupted` (its connection died, so its lock was free, before the run could tell).
FAIL = """
UPDATE forecast_runs SET status = 'failed', finished_at = clock_timestamp(), error = $2::jsonb
WHERE run_id = $1 AND (status = 'running'
    OR (status = 'failed' AND error->>'code' = 'interrupted'))
"""

# The newest FORECAST_KEEP_RUNS finished runs stay (their rows go with them by cascade).
PRUNE = """
DELETE FROM forecast_runs WHERE status <> 'running' AND run_id < (
    SELECT min(run_id) FROM (
        SELECT run_id FROM forecast_runs WHERE status <> 'running'
        ORDER BY run_id DESC LIMIT $1
    ) kept
)
"""

PREDICTION_COLUMNS = (
    "run_id", "product_id", "date", "quantity", "lo_80", "hi_80", "lo_95", "hi_95", "model",
)  # fmt: skip
PRODUCT_COLUMNS = (
    "run_id", "product_id", "model", "history_days", "windows", "mae", "rmse", "mase",
    "seasonal_naive_mase", "coverage_80", "coverage_95",
)  # fmt: skip

# --- reads ------------------------------------------------------------------------------

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

LEVEL_COLUMNS = (
    "run_id", "level", "key", "date", "quantity", "lo_80", "hi_80", "lo_95", "hi_95",
    "unallocated", "model",
)  # fmt: skip

# The products a run forecast, for the dashboard's picker: name and model.
RUN_PRODUCTS = """
SELECT f.product_id, p.code, p.name AS product_name, p.category, f.model, f.mase,
    f.seasonal_naive_mase
FROM forecast_products f JOIN products p USING (product_id)
WHERE f.run_id = :run_id ORDER BY f.product_id
"""

EXPORT_HEADER = (
    "run_id", "product_id", "product_name", "date", "quantity", "lo_80", "hi_80", "lo_95",
    "hi_95", "model",
)  # fmt: skip

# A product's id as the file wrote it: its code (text ids, escaped like any text), else
# its integer key.
EXPORT_ROWS = f"""
SELECT d.run_id,
        CASE WHEN p.code IS NULL THEN d.product_id::text ELSE {safe_text_sql("p.code")} END,
        {safe_text_sql("p.name")}, d.date, round(d.quantity::numeric, 3),
        round(d.lo_80::numeric, 3), round(d.hi_80::numeric, 3), round(d.lo_95::numeric, 3),
        round(d.hi_95::numeric, 3), d.model
    FROM predicted_product_demand d JOIN products p ON p.product_id = d.product_id
    WHERE d.run_id = (
        SELECT run_id FROM forecast_runs WHERE status = 'succeeded'
        ORDER BY run_id DESC LIMIT 1
    )
ORDER BY d.product_id, d.date
"""

LEVEL_EXPORT_HEADER = (
    "run_id", "level", "category", "date", "quantity", "lo_80", "hi_80", "lo_95", "hi_95",
    "unallocated", "model",
)  # fmt: skip

# The total first, then the categories by name; `category` empty for the total.
LEVEL_EXPORT_ROWS = f"""
SELECT d.run_id, d.level, {safe_text_sql("d.key")}, d.date, round(d.quantity::numeric, 3),
        round(d.lo_80::numeric, 3), round(d.hi_80::numeric, 3), round(d.lo_95::numeric, 3),
        round(d.hi_95::numeric, 3), round(d.unallocated::numeric, 3), d.model
    FROM predicted_level_demand d
    WHERE d.run_id = (
        SELECT run_id FROM forecast_runs WHERE status = 'succeeded'
        ORDER BY run_id DESC LIMIT 1
    )
ORDER BY d.level DESC, d.key, d.date
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
