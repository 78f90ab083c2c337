"""Products: judge every checked row against the file's other rows and the stored
products, then write them.

Owns `checked_products` and `old_prices`. Products files are small: judged into the
table (`classify`: each row's price against the one in effect on its date), then
counted, merged, and their prices written and ranged; a change's deltas re-value the
stored sales it covers (`old_prices`: the changed products' price rows as they were).
Each fragment is switched by at most one fact of the plan.
"""

from __future__ import annotations

from functools import cache

from app.analytics import rollups
from app.uploads.plan import Plan
from app.uploads.sql import bookkeeping, checks, problems

CHECKED = "checked_products"

CREATE_CHECKED = f"""
CREATE TEMP TABLE {CHECKED} (
    ord bigint, line bigint, product_id integer, name text, category text,
    price numeric(12, 2), valid_from date, product_code text, old_name text, old_category text,
    old_price numeric(12, 2), names boolean, problem text[], action text
) ON COMMIT DROP
"""
OLD_PRICES = "old_prices"
TABLES = (CHECKED, OLD_PRICES)


def _stored(plan: Plan) -> str:
    """The stored products to meet (none when no stored id is in the file's range)."""
    if plan.stored_in_range:
        return "products"
    return (
        "(SELECT NULL::integer AS product_id, NULL::text AS name, NULL::text AS category,"
        " NULL::numeric(12, 2) AS price WHERE false)"
    )


# What a `conflict` says of the stored product (problems.conflict's pattern and values).
_STORED = (
    "product %s is stored as name %s, category %s, price %s on %s",
    """coalesce(m.product_code, m.product_id::text), quote_literal(m.old_name),
                quote_literal(m.old_category), m.old_price, m.valid_from""",
)


# What a valid row changes of a stored product: its price from its date on (the price in
# effect then, after the file's earlier-dated rows, is another), or, on the row that
# names the product, its name or category.
_CHANGES = (
    "(m.price IS DISTINCT FROM m.old_price"
    " OR (m.names AND (m.name, m.category) IS DISTINCT FROM (m.old_name, m.old_category)))"
)


# Each dated row's occurrence of its id and date among the rows as valid as it, and the
# line of the first (`ranked`); the first valid occurrences, `names` on a product's
# latest-dated one (`valid`).
_OCCURRENCES = """ranked AS (
    SELECT t.*, row_number() OVER w AS occurrence, first_value(t.line) OVER w AS first_line
    FROM dated t
    WINDOW w AS (PARTITION BY t.problem IS NULL, t.product_id, t.valid_from ORDER BY t.line)
),
valid AS MATERIALIZED (
    SELECT r.ord, r.product_id, r.valid_from, r.price,
        row_number() OVER (PARTITION BY r.product_id ORDER BY r.valid_from DESC) = 1 AS names
    FROM ranked r WHERE r.problem IS NULL AND r.occurrence = 1
),"""

# Each valid row's price before it (`prior`): the stored prices and the file's valid
# rows of its product, by date (a stored price before a row of the same date).
_PRIOR_PRICES = """events AS (
    SELECT pp.product_id, pp.valid_from, pp.price, 1 AS stored, NULL::bigint AS ord
    FROM product_prices pp WHERE pp.product_id IN (SELECT product_id FROM valid)
    UNION ALL
    SELECT product_id, valid_from, price, 0, ord FROM valid
),
prior AS (
    SELECT ord, lag(price) OVER (
        PARTITION BY product_id ORDER BY valid_from, stored DESC) AS price
    FROM events
),"""

# Each judged row as `checked_products` keeps it, with its action.
_ACTIONS = f"""SELECT m.ord, m.line, m.product_id, m.name, m.category, m.price, m.valid_from,
    m.product_code, m.old_name,
    m.old_category, m.old_price, m.names, m.verdict,
    CASE
        WHEN m.verdict IS NOT NULL THEN 'reject'
        WHEN NOT m.stored THEN 'insert'
        WHEN NOT {_CHANGES} THEN 'unchanged'
        ELSE 'update'
    END
FROM judged m
"""


@cache
def classify(plan: Plan) -> str:
    """Fill `checked_products`: each checked row with its date (`valid_from`: the file's
    `effective_from`, else $1), the stored values it meets, its problem and its action
    (insert, update, unchanged or reject). The first valid occurrence of an id and date
    wins. A product's price on a date is the one the stored prices and the file's
    earlier-dated rows give it there (the first price holds before it too); the file's
    latest-dated row of a product names it (`names`: name and category are not dated)."""
    return f"""
INSERT INTO {CHECKED} (ord, line, product_id, name, category, price, valid_from,
    product_code, old_name, old_category, old_price, names, problem, action)
WITH dated AS (
    SELECT t.*, coalesce(t.effective_from, CAST($1 AS date)) AS valid_from
    FROM {checks.rows(plan)} t
),
{_OCCURRENCES}
{_PRIOR_PRICES}
met AS (
    SELECT r.ord, r.line, r.product_id, r.name, r.category, r.price, r.valid_from,
        r.product_code, p.name::text AS old_name, p.category::text AS old_category,
        CASE WHEN p.product_id IS NOT NULL THEN coalesce(b.price, (
            SELECT f.price FROM product_prices f WHERE f.product_id = r.product_id
            ORDER BY f.valid_from LIMIT 1
        )) END AS old_price,
        coalesce(v.names, false) AS names, r.problem, r.occurrence, r.first_line,
        p.product_id IS NOT NULL AS stored
    FROM ranked r
    LEFT JOIN valid v ON v.ord = r.ord
    LEFT JOIN prior b ON b.ord = r.ord
    LEFT JOIN {_stored(plan)} p ON p.product_id = r.product_id AND v.ord IS NOT NULL
),
judged AS (
    SELECT m.*,
        CASE
            WHEN m.problem IS NOT NULL THEN m.problem
            WHEN m.occurrence > 1 THEN ARRAY['duplicate_in_file', format(
                'id %s already appears on line %s', coalesce(m.product_code, m.product_id::text),
                m.first_line)
                || CASE WHEN m.valid_from <> CAST($1 AS date)
                    THEN format(' for effective_from %s', m.valid_from) ELSE '' END]
            WHEN NOT m.stored OR NOT {_CHANGES} THEN NULL
            {problems.conflict(plan, *_STORED)}
        END AS verdict
    FROM met m
)
{_ACTIONS}"""


COUNT_ACTIONS = f"SELECT action, problem[1] AS code, count(*) AS n FROM {CHECKED} GROUP BY 1, 2"

# New products, named by their latest-dated row.
INSERT = f"""
INSERT INTO products (product_id, code, name, category, price, upload_id)
SELECT product_id, product_code, name, category, price, {bookkeeping.CURRENT_UPLOAD}
FROM {CHECKED} WHERE action = 'insert' AND names
"""

UPDATE_NAMES = f"""
UPDATE products p
SET name = c.name, category = c.category, updated_at = now(),
    upload_id = {bookkeeping.CURRENT_UPLOAD}
FROM {CHECKED} c
WHERE c.action = 'update' AND c.names AND p.product_id = c.product_id
    AND (p.name, p.category) IS DISTINCT FROM (c.name, c.category)
"""

# The rows that set a price (a new product's, or a stored one's that changes it).
_PRICED = (
    f"FROM {CHECKED} WHERE action IN ('insert', 'update') AND price IS DISTINCT FROM old_price"
)

# The price rows of the stored products whose prices change, as they were.
SAVE_OLD_PRICES = f"""
CREATE TEMP TABLE {OLD_PRICES} ON COMMIT DROP AS
SELECT pp.* FROM product_prices pp
WHERE pp.product_id IN (SELECT product_id {_PRICED} AND action = 'update')
"""

SET_PRICES = (
    f"""
INSERT INTO product_prices (product_id, valid_from, valid_to, applies_from, price, upload_id)
SELECT product_id, valid_from, 'infinity', valid_from, price, {bookkeeping.CURRENT_UPLOAD}
{_PRICED}
ON CONFLICT (product_id, valid_from) DO UPDATE
SET price = excluded.price, upload_id = excluded.upload_id
""",
    # Each changed product's rows, ranged again: until the next one's date; the first
    # from the beginning of time.
    f"""
UPDATE product_prices pp SET valid_to = r.valid_to, applies_from = r.applies_from
FROM (
    SELECT product_id, valid_from,
        coalesce(lead(valid_from) OVER w, 'infinity') AS valid_to,
        CASE WHEN row_number() OVER w = 1 THEN '-infinity' ELSE valid_from END AS applies_from
    FROM product_prices
    WHERE product_id IN (SELECT product_id {_PRICED})
    WINDOW w AS (PARTITION BY product_id ORDER BY valid_from)
) r
WHERE pp.product_id = r.product_id AND pp.valid_from = r.valid_from
    AND (pp.valid_to, pp.applies_from) IS DISTINCT FROM (r.valid_to, r.applies_from)
""",
    # A product's price is its latest-dated one.
    f"""
UPDATE products p SET price = l.price, updated_at = now(),
    upload_id = {bookkeeping.CURRENT_UPLOAD}
FROM (
    SELECT DISTINCT ON (product_id) product_id, price FROM product_prices
    WHERE product_id IN (SELECT product_id {_PRICED} AND action = 'update')
    ORDER BY product_id, valid_from DESC
) l
WHERE p.product_id = l.product_id AND p.price <> l.price
""",
)

# What the changes do to the stored sales: revenue on the days they cover.
PRICE_CHANGE_DELTAS = rollups.price_change_deltas(OLD_PRICES)

REJECTED = f"SELECT ord, line, problem FROM {CHECKED} WHERE action = 'reject'"
