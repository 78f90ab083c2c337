"""The warehouse feeds: what each Parquet export holds, its key, its Arrow schema and its
SQL (issue 17).

A cursor is `[feed, n]`, opaque to clients. For the feeds that uploads write (orders,
products, order_full_information, rejects) `n` is an upload's `change_seq`: uploads take
it under the merge lock as they commit, so every upload at or below the highest committed
number is visible to any later reader, and `since=n` (rows whose last writer has a higher
number) never skips a committed row. FX rates are written outside that lock: their `n` is
the reading snapshot's xmin (`pg_snapshot_xmin`), and `since=n` returns the rows whose
writing transaction is not below it, a few of them possibly again (the sync merges on
keys, so a row read twice is still one row).

Every query here is run by COPY (asyncpg inlines `$n` safely); dates travel as text
(asyncpg sends 9999-12-31 as infinity), timestamps as microseconds since the epoch.

The two order feeds copy orders alone: integers and dates, one table scanned. Their other
columns (a product's name, category and price, an upload's time) are read in the same
snapshot into small lookups and joined in Arrow (`exports/merge.py`): per row, a join
and formatting numerics cost PostgreSQL more than the whole scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa


class FeedName(StrEnum):
    ORDERS = "orders"
    PRODUCTS = "products"
    ORDER_FULL_INFORMATION = "order_full_information"
    REJECTS = "rejects"
    FX_RATES = "fx_rates"


Columns = tuple[tuple[str, str], ...]

# (name, arrow type) per column of each feed's file. `money`: decimal128(12, 2) as stored;
# `total`: a price times a quantity can pass 10^10, so totals get 22 digits.
COLUMNS: dict[FeedName, Columns] = {
    FeedName.ORDERS: (
        ("order_id", "id"),
        ("product_id", "id"),
        ("quantity", "int32"),
        ("order_created_date", "date"),
        ("upload_id", "id"),
        ("changed_at", "timestamp"),
    ),
    FeedName.PRODUCTS: (
        ("product_id", "id"),
        ("name", "text"),
        ("category", "text"),
        ("price", "money"),
        ("upload_id", "id"),
        ("changed_at", "timestamp"),
    ),
    FeedName.ORDER_FULL_INFORMATION: (
        ("order_created_date", "date"),
        ("order_id", "id"),
        ("product_id", "id"),
        ("product_name", "text"),
        ("category", "text"),
        ("quantity", "int32"),
        ("unit_price", "money"),
        ("total_price", "total"),
    ),
    FeedName.REJECTS: (
        ("upload_id", "id"),
        ("row_number", "id"),
        ("kind", "text"),
        ("error_code", "text"),
        ("error_message", "text"),
        ("fields", "text"),
        ("changed_at", "timestamp"),
    ),
    FeedName.FX_RATES: (
        ("source", "text"),
        ("base", "text"),
        ("quote", "text"),
        ("kind", "text"),
        ("rate_date", "date"),
        ("as_of", "date"),
        ("rate", "rate"),
        ("fetched_at", "timestamp"),
    ),
}

# The primary key of each feed's rows: what a warehouse merges on.
KEYS: dict[FeedName, tuple[str, ...]] = {
    FeedName.ORDERS: ("order_id",),
    FeedName.PRODUCTS: ("product_id",),
    FeedName.ORDER_FULL_INFORMATION: ("order_id",),
    FeedName.REJECTS: ("upload_id", "row_number"),
    FeedName.FX_RATES: ("source", "base", "quote", "kind", "rate_date"),
}

# Feeds with a period (`start`, `end` on the order date).
DATED = frozenset({FeedName.ORDERS, FeedName.ORDER_FULL_INFORMATION})


@cache
def schema(feed: FeedName) -> pa.Schema:
    """The Arrow schema of the feed's file."""
    return arrow_schema(COLUMNS[feed])


def arrow_schema(columns: Columns) -> pa.Schema:
    import pyarrow as pa

    types = {
        "id": pa.int64(),
        "int32": pa.int32(),
        "date": pa.date32(),
        "text": pa.string(),
        "money": pa.decimal128(12, 2),
        "total": pa.decimal128(22, 2),
        "rate": pa.decimal128(24, 12),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }
    return pa.schema([pa.field(name, types[kind]) for name, kind in columns])


def _micros(expression: str) -> str:
    return f"CAST(extract(epoch FROM {expression}) * 1000000 AS bigint)"


# --- cursors --------------------------------------------------------------------------

# The highest change number committed (0 before the first tracked upload).
UPLOADS_CURSOR = "SELECT coalesce(max(change_seq), 0) FROM uploads"
# The oldest transaction the reading snapshot may not see: rows from it on are re-read.
FX_CURSOR = "SELECT CAST(CAST(pg_snapshot_xmin(pg_current_snapshot()) AS text) AS bigint)"
# The uploads committed after a cursor, whose rows an incremental read returns.
CHANGED_UPLOADS = "SELECT upload_id FROM uploads WHERE change_seq > $1 ORDER BY upload_id"

# --- the rows -----------------------------------------------------------------------------
# Parameters of the upload feeds: $1 the changed upload ids (an array; NULL for a full
# read), $2 and $3 their lowest and highest (what the BRIN index on orders.upload_id
# reads). Dated feeds add $4 start and $5 end (text; NULL: unbounded, and then no filter
# at all, so that a full read scans the table rather than walk the date index).

_PERIOD = """(CAST($4 AS text) IS NULL OR o.created_date >= CAST(CAST($4 AS text) AS date))
    AND (CAST($5 AS text) IS NULL OR o.created_date <= CAST(CAST($5 AS text) AS date))"""
_ORDER_CHANGED = """(CAST($1 AS bigint[]) IS NULL OR (
    o.upload_id BETWEEN CAST($2 AS bigint) AND CAST($3 AS bigint)
    AND o.upload_id = ANY(CAST($1 AS bigint[]))))"""

ORDER_ROWS: Columns = (
    ("order_id", "id"),
    ("product_id", "id"),
    ("quantity", "int32"),
    ("order_created_date", "date"),
    ("upload_id", "id"),
)
ORDERS = f"""
SELECT o.order_id, o.product_id, o.quantity, o.created_date, o.upload_id
FROM orders o
WHERE {_ORDER_CHANGED} AND {_PERIOD}
"""
# When each upload committed: an order's `changed_at` (null for rows older than tracking).
UPLOAD_TIMES: Columns = (("upload_id", "id"), ("changed_at", "timestamp"))
UPLOAD_TIMES_SQL = f"""
SELECT upload_id, {_micros("finished_at")}
FROM uploads
WHERE CAST($1 AS bigint[]) IS NULL OR upload_id = ANY(CAST($1 AS bigint[]))
"""

OFI_ROWS: Columns = (
    ("order_created_date", "date"),
    ("order_id", "id"),
    ("product_id", "id"),
    ("quantity", "int32"),
)
# The merged view, totals at the current price: an order changes here when it was
# written, or when its product was (a new price changes its total).
ORDER_FULL_INFORMATION = f"""
SELECT o.created_date, o.order_id, o.product_id, o.quantity
FROM orders o
WHERE {_ORDER_CHANGED} AND {_PERIOD}
UNION ALL
SELECT o.created_date, o.order_id, o.product_id, o.quantity
FROM products p JOIN orders o ON o.product_id = p.product_id
WHERE CAST($1 AS bigint[]) IS NOT NULL AND p.upload_id = ANY(CAST($1 AS bigint[])) AND {_PERIOD}
    AND NOT coalesce(o.upload_id BETWEEN CAST($2 AS bigint) AND CAST($3 AS bigint)
        AND o.upload_id = ANY(CAST($1 AS bigint[])), false)
"""
# The products those rows name: the whole catalogue for a full read; for an incremental
# one, the changed products and those of the changed orders (a superset is harmless).
ORDER_PRODUCTS: Columns = (
    ("product_id", "id"),
    ("product_name", "text"),
    ("category", "text"),
    ("unit_price", "money"),
)
ORDER_PRODUCTS_SQL = f"""
SELECT p.product_id, p.name, p.category, p.price
FROM products p
WHERE CAST($1 AS bigint[]) IS NULL OR p.upload_id = ANY(CAST($1 AS bigint[]))
    OR p.product_id IN (SELECT o.product_id FROM orders o WHERE {_ORDER_CHANGED})
"""

PRODUCTS = f"""
SELECT p.product_id, p.name, p.category, p.price, p.upload_id, {_micros("p.updated_at")}
FROM products p
WHERE CAST($1 AS bigint[]) IS NULL OR p.upload_id = ANY(CAST($1 AS bigint[]))
"""

REJECTS = f"""
SELECT r.upload_id, r.row_number, u.kind, r.error_code, r.error_message,
    CAST(array_to_json(r.fields) AS text), {_micros("u.finished_at")}
FROM rejects r JOIN uploads u ON u.upload_id = r.upload_id
WHERE u.change_seq IS NOT NULL
    AND (CAST($1 AS bigint[]) IS NULL OR r.upload_id = ANY(CAST($1 AS bigint[])))
"""

# $1: the cursor's xmin, or NULL for every rate.
FX_RATES = f"""
SELECT source, base, quote, kind, rate_date, as_of, rate, {_micros("fetched_at")}
FROM fx_rates
WHERE CAST($1 AS bigint) IS NULL OR changed_xid >= $1
"""


@dataclass(frozen=True)
class Source:
    """One COPY: its SQL, its arguments, and the (name, kind) of the columns it writes."""

    sql: str
    args: tuple[object, ...]
    columns: Columns


@dataclass(frozen=True)
class Query:
    """One read of a feed: the COPY of its rows, and the lookups (by name) that
    `exports/merge.py` joins to them, all read in one snapshot."""

    rows: Source
    lookups: tuple[tuple[str, Source], ...] = ()


def rows(feed: FeedName, changed: list[int] | None, period: tuple[str | None, str | None]) -> Query:
    """What to copy for `feed`'s rows of the uploads `changed` (None: every row), in
    `period` (ISO dates, None: unbounded)."""
    low, high = (min(changed), max(changed)) if changed else (0, 0)
    args = (changed, low, high)
    if feed is FeedName.ORDERS:
        return Query(
            Source(ORDERS, (*args, *period), ORDER_ROWS),
            (("uploads", Source(UPLOAD_TIMES_SQL, (changed,), UPLOAD_TIMES)),),
        )
    if feed is FeedName.ORDER_FULL_INFORMATION:
        return Query(
            Source(ORDER_FULL_INFORMATION, (*args, *period), OFI_ROWS),
            (("products", Source(ORDER_PRODUCTS_SQL, args, ORDER_PRODUCTS)),),
        )
    if feed is FeedName.PRODUCTS:
        return Query(Source(PRODUCTS, (changed,), COLUMNS[feed]))
    if feed is FeedName.REJECTS:
        return Query(Source(REJECTS, (changed,), COLUMNS[feed]))
    raise ValueError(feed)


def fx_rates(since: int | None) -> Query:
    """What to copy for the rates written from transaction `since` on (None: all)."""
    return Query(Source(FX_RATES, (since,), COLUMNS[FeedName.FX_RATES]))


# --- the log of feed reads -------------------------------------------------------------

RECORD_READ = """
INSERT INTO syncs (feed, cursor_from, cursor_to) VALUES ($1, $2, $3) RETURNING sync_id
"""
FINISH_READ = "UPDATE syncs SET rows = $2, finished_at = clock_timestamp() WHERE sync_id = $1"
LIST_READS = """
SELECT sync_id, feed, cursor_from, cursor_to, rows, read_at, finished_at
FROM syncs
WHERE (CAST(:feed AS text) IS NULL OR feed = :feed)
    AND (CAST(:before AS bigint) IS NULL OR sync_id < :before)
ORDER BY sync_id DESC
LIMIT :limit
"""
