"""The warehouse feeds: what each Parquet export holds, its key, its Arrow schema and its
SQL (issue 17).

A cursor is `[feed, n]`, opaque to clients. For the feeds that uploads write (orders,
products, product_prices, order_full_information, rejects) `n` is an upload's
`change_seq`: uploads take it under the merge lock as they commit, so every upload at or
below the highest committed number is visible to any later reader, and `since=n` (rows
whose last writer has a higher number; for product_prices, every row of a product one of
them set a price of) never skips a committed row. FX rates are written outside that
lock: their `n` is the reading snapshot's xmin (`pg_snapshot_xmin`), and `since=n`
returns the rows whose writing transaction is not below it, a few of them possibly again
(the sync merges on keys, so a row read twice is still one row).

Every query here is run by COPY (asyncpg inlines `$n` safely); dates travel as text
(asyncpg sends 9999-12-31 as infinity), timestamps as microseconds since the epoch.

Text ids (`?ids=text`): a product or order line with a code is keyed by a negative
surrogate. The key columns stay the int64 keys (what a warehouse merges on, as before);
`product_code` and `order_code`, last in each file that names a product or an order, hold
the id as the file wrote it (null for integer ids). So integer-id data keeps every column
it had, with its type and place, and gains only columns of nulls.

The two order feeds copy orders alone: integers, dates, the unit price an order was
charged and the line's code (both mostly empty), one table scanned. Their other columns
(a product's name, category and code, the price in effect on the order's date, an
upload's time) are read in the same snapshot into small lookups and joined in Arrow
(`exports/merge.py`): per row, a join and formatting numerics cost PostgreSQL more than
the whole scan.
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
    PRODUCT_PRICES = "product_prices"
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
        ("unit_price", "money"),  # as charged; null: the list price in effect applies
        ("upload_id", "id"),
        ("changed_at", "timestamp"),
        ("order_code", "text"),
        ("product_code", "text"),
    ),
    FeedName.PRODUCTS: (
        ("product_id", "id"),
        ("name", "text"),
        ("category", "text"),
        ("price", "money"),
        ("upload_id", "id"),
        ("changed_at", "timestamp"),
        ("product_code", "text"),
    ),
    # One row per price a product has had: `valid_to` null for the latest (open) one; the
    # first also holds before its `valid_from`. `upload_id`: the upload that set the price;
    # `changed_at`: when the product's prices last changed.
    FeedName.PRODUCT_PRICES: (
        ("product_id", "id"),
        ("price", "money"),
        ("valid_from", "date"),
        ("valid_to", "date"),
        ("upload_id", "id"),
        ("changed_at", "timestamp"),
        ("product_code", "text"),
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
        ("order_code", "text"),
        ("product_code", "text"),
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
    FeedName.PRODUCT_PRICES: ("product_id", "valid_from"),
    FeedName.ORDER_FULL_INFORMATION: ("order_id",),
    FeedName.REJECTS: ("upload_id", "row_number"),
    FeedName.FX_RATES: ("source", "base", "quote", "kind", "rate_date"),
}

# Feeds with a period (`start`, `end` on the order date).
DATED = frozenset({FeedName.ORDERS, FeedName.ORDER_FULL_INFORMATION})


@cache
def schema(feed: FeedName) -> pa.Schema:
    """The Arrow schema of the feed's file: its key columns never null (a warehouse
    loader merging on them, dlt among them, would otherwise see hints that differ)."""
    keys = set(KEYS[feed])
    return arrow_schema(COLUMNS[feed], not_null=keys)


def arrow_schema(columns: Columns, not_null: frozenset[str] | set[str] = frozenset()) -> pa.Schema:
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
    return pa.schema(
        [pa.field(name, types[kind], nullable=name not in not_null) for name, kind in columns]
    )


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
# An order written by one of the changed uploads (of an incremental read).
_ORDER_WRITTEN = """coalesce(o.upload_id BETWEEN CAST($2 AS bigint) AND CAST($3 AS bigint)
        AND o.upload_id = ANY(CAST($1 AS bigint[])), false)"""

ORDER_ROWS: Columns = (
    ("order_id", "id"),
    ("product_id", "id"),
    ("quantity", "int32"),
    ("order_created_date", "date"),
    ("unit_price", "money"),
    ("upload_id", "id"),
    ("order_code", "text"),
)
ORDERS = f"""
SELECT o.order_id, o.product_id, o.quantity, o.created_date, o.unit_price, o.upload_id, o.code
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

# The orders' own columns; `unit_price` is the one charged (null: the list price in
# effect on `order_created_date` applies, which merge.py looks up in ORDER_PRICES).
OFI_ROWS: Columns = (
    ("order_created_date", "date"),
    ("order_id", "id"),
    ("product_id", "id"),
    ("quantity", "int32"),
    ("unit_price", "money"),
    ("order_code", "text"),
)
_OFI_SELECT = "SELECT o.created_date, o.order_id, o.product_id, o.quantity, o.unit_price, o.code"


@cache
def order_full_information_sql() -> str:
    """The merged view, each order at the price it was sold at. An order changes here
    when it was written; when its product row was (a new name, category or latest price:
    every order of it, a superset); or, valued at the list price, when an upload set the
    price row in effect on its date. That is every order whose price moved: setting a
    price only shortens the ranges of the product's other rows, so each day whose price
    changes lies in the range of a row the upload set."""
    # Here, not at import: the sync (an HTTP client) imports this module.
    from app.analytics import rollups

    in_effect = rollups.IN_EFFECT.format(product="o.product_id", day="o.created_date")
    return f"""
{_OFI_SELECT}
FROM orders o
WHERE {_ORDER_CHANGED} AND {_PERIOD}
UNION ALL
{_OFI_SELECT}
FROM products p JOIN orders o ON o.product_id = p.product_id
WHERE CAST($1 AS bigint[]) IS NOT NULL AND p.upload_id = ANY(CAST($1 AS bigint[])) AND {_PERIOD}
    AND NOT {_ORDER_WRITTEN}
UNION ALL
{_OFI_SELECT}
FROM product_prices pp
CROSS JOIN LATERAL (
    -- The product's orders by its index, their days checked on them (OFFSET 0: the date
    -- index would read every order for a first price, which holds from the beginning).
    SELECT o.created_date, o.order_id, o.product_id, o.quantity, o.unit_price, o.upload_id,
        o.code
    FROM orders o WHERE o.product_id = pp.product_id OFFSET 0
) o
WHERE CAST($1 AS bigint[]) IS NOT NULL AND pp.upload_id = ANY(CAST($1 AS bigint[]))
    AND pp.product_id NOT IN (
        SELECT p.product_id FROM products p WHERE p.upload_id = ANY(CAST($1 AS bigint[])))
    AND {in_effect} AND o.unit_price IS NULL AND {_PERIOD} AND NOT {_ORDER_WRITTEN}
"""


# The products those rows name: the whole catalogue for a full read; for an incremental
# one, the changed products, those of the changed orders and those with a price set by a
# changed upload (a superset is harmless).
_NAMED = f"""(CAST($1 AS bigint[]) IS NULL OR p.upload_id = ANY(CAST($1 AS bigint[]))
    OR p.product_id IN (SELECT o.product_id FROM orders o WHERE {_ORDER_CHANGED})
    OR p.product_id IN (SELECT c.product_id FROM product_prices c
        WHERE c.upload_id = ANY(CAST($1 AS bigint[]))))"""
ORDER_PRODUCTS: Columns = (
    ("product_id", "id"),
    ("product_name", "text"),
    ("category", "text"),
    ("product_code", "text"),
)
ORDER_PRODUCTS_SQL = f"""
SELECT p.product_id, p.name, p.category, p.code
FROM products p
WHERE {_NAMED}
"""
# The codes of those products, for the orders feed: only the coded ones, which are exactly
# those with a negative key (a CHECK), found by the primary key; for integer-id data, none.
PRODUCT_CODES: Columns = (("product_id", "id"), ("product_code", "text"))
PRODUCT_CODES_SQL = f"""
SELECT p.product_id, p.code
FROM products p
WHERE p.product_id < 0 AND {_NAMED}
"""
# Every price those products have had, each from `applies_from` on (null: from the
# beginning, the product's first price) until the next one's.
ORDER_PRICES: Columns = (
    ("product_id", "id"),
    ("applies_from", "date"),
    ("price", "money"),
)
ORDER_PRICES_SQL = f"""
SELECT pp.product_id, CASE WHEN isfinite(pp.applies_from) THEN pp.applies_from END, pp.price
FROM product_prices pp
WHERE pp.product_id IN (SELECT p.product_id FROM products p WHERE {_NAMED})
"""

PRODUCTS = f"""
SELECT p.product_id, p.name, p.category, p.price, p.upload_id, {_micros("p.updated_at")},
    p.code
FROM products p
WHERE CAST($1 AS bigint[]) IS NULL OR p.upload_id = ANY(CAST($1 AS bigint[]))
"""

# Price rows change in two ways: an upload sets one (its price and `upload_id`), or ranges
# it again when it sets another of the same product (`valid_to`, the first one's start),
# leaving `upload_id` as it was. So an incremental read returns every row of each product
# an upload set a price of: what a re-ranging can touch. `changed_at`: the latest commit
# among the product's rows' uploads, when its prices last changed. The code is looked up
# for coded products (negative keys) alone: integer-id rows pay nothing for it.
PRODUCT_PRICES = f"""
SELECT pp.product_id, pp.price, pp.valid_from,
    CASE WHEN isfinite(pp.valid_to) THEN pp.valid_to END, pp.upload_id,
    {_micros("max(u.finished_at) OVER (PARTITION BY pp.product_id)")},
    CASE WHEN pp.product_id < 0
        THEN (SELECT p.code FROM products p WHERE p.product_id = pp.product_id) END
FROM product_prices pp LEFT JOIN uploads u ON u.upload_id = pp.upload_id
WHERE CAST($1 AS bigint[]) IS NULL OR pp.product_id IN (
    SELECT c.product_id FROM product_prices c WHERE c.upload_id = ANY(CAST($1 AS bigint[])))
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
            (
                ("uploads", Source(UPLOAD_TIMES_SQL, (changed,), UPLOAD_TIMES)),
                ("codes", Source(PRODUCT_CODES_SQL, args, PRODUCT_CODES)),
            ),
        )
    if feed is FeedName.ORDER_FULL_INFORMATION:
        return Query(
            Source(order_full_information_sql(), (*args, *period), OFI_ROWS),
            (
                ("products", Source(ORDER_PRODUCTS_SQL, args, ORDER_PRODUCTS)),
                ("prices", Source(ORDER_PRICES_SQL, args, ORDER_PRICES)),
            ),
        )
    if feed is FeedName.PRODUCTS:
        return Query(Source(PRODUCTS, (changed,), COLUMNS[feed]))
    if feed is FeedName.PRODUCT_PRICES:
        return Query(Source(PRODUCT_PRICES, (changed,), COLUMNS[feed]))
    if feed is FeedName.REJECTS:
        return Query(Source(REJECTS, (changed,), COLUMNS[feed]))
    raise ValueError(feed)


def fx_rates(since: int | None) -> Query:
    """What to copy for the rates written from transaction `since` on (None: all)."""
    return Query(Source(FX_RATES, (since,), COLUMNS[FeedName.FX_RATES]))


# --- the log of feed reads -------------------------------------------------------------

RECORD_READ = """
INSERT INTO syncs (feed, cursor_from, cursor_to, consumer, dataset, report_digest)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING sync_id
"""
# Sent whole: finished too, unless the reader reports its commit (REPORT_FINISHED).
FINISH_READ = """
UPDATE syncs SET rows = $2, sent_at = clock_timestamp(),
    finished_at = CASE WHEN report_digest IS NULL THEN clock_timestamp() END
WHERE sync_id = $1
"""
# The reads a reader's destination committed: sent, reported with the read's own token
# (its digest matches), once.
REPORT_FINISHED = """
UPDATE syncs s SET finished_at = clock_timestamp()
FROM unnest($1::bigint[], $2::bytea[]) AS r(sync_id, digest)
WHERE s.sync_id = r.sync_id AND s.report_digest = r.digest
    AND s.sent_at IS NOT NULL AND s.finished_at IS NULL
RETURNING s.sync_id
"""
