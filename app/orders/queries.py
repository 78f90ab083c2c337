"""The merged order view (orders × products), for JSON pages and streamed CSV.

An order's unit price is the one it was charged (`orders.unit_price`) or else its
product's price in effect on its date (`product_prices`: exactly one row holds any
date); its total is quantity × that, exact (numeric). USD totals are rounded once per
order: round(total_brl × rate, 2), half away from zero (PostgreSQL's numeric round).
"""

from app.analytics.rollups import IN_EFFECT
from app.config import FxMode
from app.kit.csv import safe_text_sql

# The orders with their products and the price each was sold at (`PRICE`).
_SOLD = f"""orders o JOIN products p ON p.product_id = o.product_id
LEFT JOIN product_prices pp ON {IN_EFFECT.format(product="o.product_id", day="o.created_date")}"""
PRICE = "coalesce(o.unit_price, pp.price)"


def _id_text(code: str, key: str) -> str:
    """An id as the file wrote it, for CSV: its code (text ids, escaped like any text),
    else its integer key."""
    return f"CASE WHEN {code} IS NULL THEN {key}::text ELSE {safe_text_sql(code)} END"


ORDER_ID = _id_text("o.code", "o.order_id")
PRODUCT_ID = _id_text("p.code", "o.product_id")

# :start/:end inclusive; product_id and category optional; keyset after (date, id). The
# cursor's date travels as text: asyncpg sends 9999-12-31 (date.max) as infinity.
_FILTERS = """
o.created_date BETWEEN :start AND :end
AND (CAST(:product_id AS integer) IS NULL OR o.product_id = :product_id)
AND (CAST(:category AS text) IS NULL OR p.category = :category)
"""

PAGE = f"""
SELECT o.order_id, o.code AS order_code, o.created_date AS order_created_date, o.product_id,
    p.code AS product_code, p.name AS product_name, p.category, o.quantity,
    {PRICE} AS unit_price_brl,
    o.quantity * {PRICE} AS total_price_brl
FROM {_SOLD}
WHERE {_FILTERS}
    AND (o.created_date, o.order_id) > (to_date(:after_date, 'YYYY-MM-DD'), :after_id)
ORDER BY o.created_date, o.order_id
LIMIT :limit
"""

# For COPY: asyncpg inlines $n safely. $1 start, $2 end, $3 product_id, $4 category; then
# the rate: one number ($5) in latest mode, or in order_date mode the days ($5) and their
# rates ($6). A day missing from those (an upload landing meanwhile) leaves the USD cell
# empty rather than dropping the order.
_COPY_FILTERS = """
o.created_date BETWEEN $1 AND $2
AND (CAST($3 AS integer) IS NULL OR o.product_id = $3)
AND (CAST($4 AS text) IS NULL OR p.category = $4)
"""


def _usd(mode: FxMode, first: int) -> tuple[str, str]:
    """The USD expression and the join it needs, with parameters numbered from `first`."""
    if mode is FxMode.LATEST:
        return f"round(o.quantity * {PRICE} * CAST(${first} AS numeric), 2)", ""
    join = (
        # The days as text: asyncpg would send 9999-12-31 (date.max) as infinity.
        f"LEFT JOIN unnest(CAST(CAST(${first} AS text[]) AS date[]),"
        f" CAST(${first + 1} AS numeric[]))"
        " AS r(day, rate) ON r.day = o.created_date"
    )
    return f"round(o.quantity * {PRICE} * r.rate, 2)", join


def copy_orders(mode: FxMode) -> str:
    usd, join = _usd(mode, 5)
    return f"""
SELECT {ORDER_ID}, o.created_date, {PRODUCT_ID},
    {safe_text_sql("p.name")},
    {safe_text_sql("p.category")}, o.quantity, {PRICE}, o.quantity * {PRICE}, {usd}
FROM {_SOLD} {join}
WHERE {_COPY_FILTERS}
ORDER BY o.created_date, o.order_id
"""


ORDERS_HEADER = (
    "order_id", "order_created_date", "product_id", "product_name", "category", "quantity",
    "unit_price_brl", "total_price_brl", "total_price_usd",
)  # fmt: skip

# The assessment's exports, column for column.
COPY_ORDER_FULL_INFORMATION = f"""
SELECT o.created_date, {ORDER_ID}, {safe_text_sql("p.name")}, o.quantity,
    o.quantity * {PRICE}
FROM {_SOLD}
ORDER BY o.created_date, o.order_id
"""
ORDER_FULL_INFORMATION_HEADER = (
    "order_created_date", "order_id", "product_name", "quantity", "total_price",
)  # fmt: skip


def copy_fixed_order_full_information(mode: FxMode) -> str:
    usd, join = _usd(mode, 1)
    return f"""
SELECT o.created_date, {ORDER_ID}, {safe_text_sql("p.name")}, o.quantity,
    o.quantity * {PRICE}, {usd}
FROM {_SOLD} {join}
ORDER BY o.created_date, o.order_id
"""


FIXED_ORDER_FULL_INFORMATION_HEADER = (
    "order_created_date", "order_id", "product_name", "quantity", "total_price_br",
    "total_price_us",
)  # fmt: skip
