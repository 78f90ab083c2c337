"""The SQL of a forecast run, in asyncpg's `$n` style: what a run reads and writes on its
own connection, and the exports of the latest run (the read endpoints' statements, in
`:name` style, are in reads.py)."""

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

LEVEL_COLUMNS = (
    "run_id", "level", "key", "date", "quantity", "lo_80", "hi_80", "lo_95", "hi_95",
    "unallocated", "model",
)  # fmt: skip

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
