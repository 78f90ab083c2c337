"""Products: judge every checked row against the file's other rows and the stored
products, then write them.

Owns `checked_products`. Products files are small: judged into the table (`classify`),
then counted, merged and re-priced from it. Each fragment is switched by at most one fact
of the plan.
"""

from __future__ import annotations

from functools import cache

from app.analytics import rollups
from app.uploads.plan import Plan
from app.uploads.sql import bookkeeping, checks

CHECKED = "checked_products"
TABLES = (CHECKED,)

CREATE_CHECKED = f"""
CREATE TEMP TABLE {CHECKED} (
    ord bigint, line bigint, product_id integer, name text, category text,
    price numeric(12, 2), old_name text, old_category text, old_price numeric(12, 2),
    problem text[], action text
) ON COMMIT DROP
"""


def _stored(plan: Plan) -> str:
    """The stored products to meet (none when no stored id is in the file's range)."""
    if plan.stored_in_range:
        return "products"
    return (
        "(SELECT NULL::integer AS product_id, NULL::text AS name, NULL::text AS category,"
        " NULL::numeric(12, 2) AS price WHERE false)"
    )


def _conflict(plan: Plan) -> str:
    """What a stored product with other values is: an update, or a `conflict`."""
    if plan.update:
        return "ELSE NULL"
    return """ELSE ARRAY['conflict', format(
                'product %s is stored as name %s, category %s, price %s;'
                ' upload with on_conflict=update to replace it',
                p.product_id, quote_literal(p.name), quote_literal(p.category), p.price)]"""


@cache
def classify(plan: Plan) -> str:
    """Fill `checked_products`: each checked row with the stored row it meets, its
    problem and its action (insert, update, unchanged or reject). The first valid
    occurrence of an id wins."""
    return f"""
INSERT INTO {CHECKED} (ord, line, product_id, name, category, price,
    old_name, old_category, old_price, problem, action)
WITH ranked AS (
    SELECT t.*, row_number() OVER w AS occurrence, first_value(t.line) OVER w AS first_line
    FROM {checks.rows(plan)} t
    WINDOW w AS (PARTITION BY t.problem IS NULL, t.product_id ORDER BY t.line)
),
met AS (
    SELECT r.ord, r.line, r.product_id, r.name, r.category, r.price,
        p.name::text AS old_name, p.category::text AS old_category, p.price AS old_price,
        CASE
            WHEN r.problem IS NOT NULL THEN r.problem
            WHEN r.occurrence > 1 THEN ARRAY['duplicate_in_file',
                format('id %s already appears on line %s', r.product_id, r.first_line)]
            WHEN p.product_id IS NULL
                OR (p.name, p.category, p.price) = (r.name, r.category, r.price) THEN NULL
            {_conflict(plan)}
        END AS problem
    FROM ranked r
    LEFT JOIN {_stored(plan)} p ON p.product_id = r.product_id
        AND r.problem IS NULL AND r.occurrence = 1
)
SELECT m.*,
    CASE
        WHEN m.problem IS NOT NULL THEN 'reject'
        WHEN m.old_price IS NULL THEN 'insert'
        WHEN (m.old_name, m.old_category, m.old_price) = (m.name, m.category, m.price)
            THEN 'unchanged'
        ELSE 'update'
    END AS action
FROM met m
"""


COUNT_ACTIONS = f"SELECT action, problem[1] AS code, count(*) AS n FROM {CHECKED} GROUP BY 1, 2"

INSERT = f"""
INSERT INTO products (product_id, name, category, price, upload_id)
SELECT product_id, name, category, price, {bookkeeping.CURRENT_UPLOAD}
FROM {CHECKED} WHERE action = 'insert'
"""

UPDATE_STORED = f"""
UPDATE products p
SET name = c.name, category = c.category, price = c.price, updated_at = now(),
    upload_id = {bookkeeping.CURRENT_UPLOAD}
FROM {CHECKED} c WHERE c.action = 'update' AND p.product_id = c.product_id
"""

# Products whose price changed: every stored sale of theirs changes revenue.
PRICE_CHANGES = rollups.price_change_table(
    f"SELECT product_id, price - old_price AS delta FROM {CHECKED}"
    " WHERE action = 'update' AND price <> old_price"
)

REJECTED = f"SELECT ord, line, problem FROM {CHECKED} WHERE action = 'reject'"
