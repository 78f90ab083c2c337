"""The SQL of an upload: stage, judge every row, merge, quarantine.

Statements are built once per kind from constants (rules.py and the column lists
here); every value from the file travels as data, through COPY or a parameter.
"""

from __future__ import annotations

from functools import cache

from app.uploads.models import UploadKind
from app.uploads.rules import RULES, WHITESPACE

# Keys of transaction-level advisory locks. One for all merges, so that uploads that
# overlap commit one after the other, as if run in sequence, and never deadlock; one
# per upload, held by the loading session, so readers can tell a dead upload.
MERGE_LOCK_KEY = 0x4F4C_0000_0000_0000
UPLOAD_LOCK_BASE = 0x4F4C_0001_0000_0000


def stage_table(kind: UploadKind) -> str:
    return f"stage_{kind.value}"


def count_staged(kind: UploadKind) -> str:
    return f"SELECT count(*) FROM {stage_table(kind)}"


def analyze_staged(kind: UploadKind) -> str:
    # The planner then knows how many rows the judging joins and sorts will meet.
    return f"ANALYZE {stage_table(kind)}"


@cache
def create_stage(kind: UploadKind) -> str:
    """A temporary table of raw text fields; `ord` numbers records in file order."""
    fields = ", ".join(f"{name} text" for name in RULES[kind].required)
    return (
        f"CREATE TEMP TABLE {stage_table(kind)} ("
        " ord bigint GENERATED ALWAYS AS IDENTITY,"
        " line bigint, bad_count integer, raw jsonb,"
        f" {fields}) ON COMMIT DROP"
    )


def _trimmed(kind: UploadKind) -> str:
    cols = ", ".join(
        f"NULLIF(btrim(s.{name}, {WHITESPACE}), '') AS {name}" for name in RULES[kind].required
    )
    return (
        "SELECT s.ord, COALESCE(s.line, s.ord + $1) AS line, s.bad_count, "
        f"{cols} FROM {stage_table(kind)} s"
    )


# `'2024-12-01'` as the original files write dates: one pair of single quotes, and
# spaces inside or outside them, are allowed.
_UNQUOTED_DATE = (
    "CASE WHEN char_length(created_date) >= 2 AND created_date LIKE '''%'''"
    f" THEN NULLIF(btrim(substr(created_date, 2, char_length(created_date) - 2), {WHITESPACE}), '')"
    " ELSE created_date END AS created_date"
)


@cache
def judge(kind: UploadKind, *, check_stored: bool) -> str:
    """Fill `checked`: per staged row its typed values, the stored row it meets, its
    problem (`ARRAY[code, message]`) and its action: insert, update, unchanged, reject.

    Parameters: $1 header lines, $2 on_conflict, $3 header width.
    `check_stored=False` skips the lookup of stored rows when none can match.
    """
    rules = RULES[kind]
    problem = rules.problem_sql("$3::integer")
    if kind is UploadKind.ORDERS:
        return _judge_orders(problem, check_stored)
    return _judge_products(problem, check_stored)


def _judge_orders(problem: str, check_stored: bool) -> str:
    stored = (
        "orders"
        if check_stored
        else "(SELECT NULL::bigint AS order_id, NULL::integer AS product_id,"
        " NULL::integer AS quantity, NULL::date AS created_date WHERE false)"
    )
    return f"""
INSERT INTO checked
WITH trimmed AS ({_trimmed(UploadKind.ORDERS)}),
unquoted AS (
    SELECT ord, line, bad_count, id, product_id, quantity, {_UNQUOTED_DATE} FROM trimmed
),
judged AS (SELECT u.*, {problem} AS problem FROM unquoted u),
typed AS (
    SELECT ord, line, problem,
        CASE WHEN problem IS NULL THEN id::bigint END AS order_id,
        CASE WHEN problem IS NULL THEN product_id::integer END AS product_id,
        CASE WHEN problem IS NULL THEN quantity::integer END AS quantity,
        CASE WHEN problem IS NULL THEN created_date::date END AS created_date
    FROM judged
),
known AS (
    SELECT t.*, (t.problem IS NULL AND p.product_id IS NOT NULL) AS ok
    FROM typed t LEFT JOIN products p ON p.product_id = t.product_id
),
ranked AS (
    SELECT k.*, row_number() OVER w AS occurrence, first_value(k.line) OVER w AS first_line
    FROM known k
    WINDOW w AS (PARTITION BY k.ok, k.order_id ORDER BY k.line)
),
met AS (
    SELECT r.ord, r.line, r.order_id, r.product_id, r.quantity, r.created_date,
        o.product_id AS old_product_id, o.quantity AS old_quantity,
        o.created_date AS old_created_date,
        CASE
            WHEN r.problem IS NOT NULL THEN r.problem
            WHEN NOT r.ok THEN ARRAY['unknown_product',
                format('product_id %s is not a stored product', r.product_id)]
            WHEN r.occurrence > 1 THEN ARRAY['duplicate_in_file',
                format('id %s already appears on line %s', r.order_id, r.first_line)]
            WHEN o.order_id IS NULL
                OR (o.product_id, o.quantity, o.created_date)
                    = (r.product_id, r.quantity, r.created_date)
                OR $2 = 'update' THEN NULL
            ELSE ARRAY['conflict', format(
                'order %s is stored with product_id %s, quantity %s, created_date %s;'
                ' upload with on_conflict=update to replace it',
                o.order_id, o.product_id, o.quantity, o.created_date)]
        END AS problem
    FROM ranked r
    LEFT JOIN {stored} o ON o.order_id = r.order_id AND r.ok AND r.occurrence = 1
)
SELECT m.*,
    CASE
        WHEN m.problem IS NOT NULL THEN 'reject'
        WHEN m.old_product_id IS NULL THEN 'insert'
        WHEN (m.old_product_id, m.old_quantity, m.old_created_date)
            = (m.product_id, m.quantity, m.created_date) THEN 'unchanged'
        ELSE 'update'
    END AS action
FROM met m
"""


def _judge_products(problem: str, check_stored: bool) -> str:
    stored = (
        "products"
        if check_stored
        else "(SELECT NULL::integer AS product_id, NULL::text AS name, NULL::text AS category,"
        " NULL::numeric AS price WHERE false)"
    )
    return f"""
INSERT INTO checked
WITH trimmed AS ({_trimmed(UploadKind.PRODUCTS)}),
judged AS (SELECT t.*, {problem} AS problem FROM trimmed t),
typed AS (
    SELECT ord, line, problem,
        CASE WHEN problem IS NULL THEN id::integer END AS product_id,
        CASE WHEN problem IS NULL THEN name END AS name,
        CASE WHEN problem IS NULL THEN category END AS category,
        CASE WHEN problem IS NULL THEN price::numeric(12, 2) END AS price
    FROM judged
),
ranked AS (
    SELECT t.*, row_number() OVER w AS occurrence, first_value(t.line) OVER w AS first_line
    FROM typed t
    WINDOW w AS (PARTITION BY t.problem IS NULL, t.product_id ORDER BY t.line)
),
met AS (
    SELECT r.ord, r.line, r.product_id, r.name, r.category, r.price,
        p.name AS old_name, p.category AS old_category, p.price AS old_price,
        CASE
            WHEN r.problem IS NOT NULL THEN r.problem
            WHEN r.occurrence > 1 THEN ARRAY['duplicate_in_file',
                format('id %s already appears on line %s', r.product_id, r.first_line)]
            WHEN p.product_id IS NULL
                OR (p.name, p.category, p.price) = (r.name, r.category, r.price)
                OR $2 = 'update' THEN NULL
            ELSE ARRAY['conflict', format(
                'product %s is stored as name %s, category %s, price %s;'
                ' upload with on_conflict=update to replace it',
                p.product_id, quote_literal(p.name), quote_literal(p.category), p.price)]
        END AS problem
    FROM ranked r
    LEFT JOIN {stored} p ON p.product_id = r.product_id
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


CREATE_CHECKED = {
    UploadKind.ORDERS: """
CREATE TEMP TABLE checked (
    ord bigint, line bigint, order_id bigint, product_id integer, quantity integer,
    created_date date, old_product_id integer, old_quantity integer, old_created_date date,
    problem text[], action text
) ON COMMIT DROP
""",
    UploadKind.PRODUCTS: """
CREATE TEMP TABLE checked (
    ord bigint, line bigint, product_id integer, name text, category text,
    price numeric(12, 2), old_name text, old_category text, old_price numeric(12, 2),
    problem text[], action text
) ON COMMIT DROP
""",
}


@cache
def id_range(kind: UploadKind) -> str:
    """The smallest and largest well-formed id of the staged rows, or NULLs."""
    return (
        f"SELECT min(v), max(v) FROM (SELECT btrim(id, {WHITESPACE})::numeric AS v"
        f" FROM {stage_table(kind)} WHERE btrim(id, {WHITESPACE}) ~ '^[+-]?[0-9]{{1,19}}$') x"
    )


STORED_IN_RANGE = {
    UploadKind.ORDERS: "SELECT EXISTS (SELECT 1 FROM orders WHERE order_id BETWEEN $1 AND $2)",
    UploadKind.PRODUCTS: (
        "SELECT EXISTS (SELECT 1 FROM products WHERE product_id BETWEEN $1 AND $2)"
    ),
}

COUNT_ACTIONS = """
SELECT action, problem[1] AS code, count(*) AS n FROM checked GROUP BY 1, 2
"""


@cache
def insert_rejects(kind: UploadKind, order: tuple[str, ...]) -> str:
    """Quarantine every rejected row with its fields as received, in the file's order.

    `order` names the required column at each header position (files with extra
    columns keep all their fields in `raw`). $1 upload id.
    """
    by_position = ", ".join(f"s.{name}" for name in order)
    return f"""
INSERT INTO rejects (upload_id, row_number, error_code, error_message, fields)
SELECT $1, c.line, c.problem[1], c.problem[2],
    CASE WHEN s.raw IS NOT NULL
        THEN ARRAY(SELECT f.v FROM jsonb_array_elements_text(s.raw) WITH ORDINALITY f(v, i)
                   ORDER BY f.i)
        ELSE ARRAY[{by_position}]
    END
FROM checked c JOIN {stage_table(kind)} s ON s.ord = c.ord
WHERE c.action = 'reject'
"""


MERGE = {
    UploadKind.ORDERS: (
        """
INSERT INTO orders (order_id, product_id, quantity, created_date)
SELECT order_id, product_id, quantity, created_date FROM checked WHERE action = 'insert'
""",
        """
UPDATE orders o
SET product_id = c.product_id, quantity = c.quantity, created_date = c.created_date
FROM checked c WHERE c.action = 'update' AND o.order_id = c.order_id
""",
    ),
    UploadKind.PRODUCTS: (
        """
INSERT INTO products (product_id, name, category, price)
SELECT product_id, name, category, price FROM checked WHERE action = 'insert'
""",
        """
UPDATE products p
SET name = c.name, category = c.category, price = c.price, updated_at = now()
FROM checked c WHERE c.action = 'update' AND p.product_id = c.product_id
""",
    ),
}

# What changes in the sales rollups: an inserted order adds itself; an updated one adds
# its new values and takes away its old ones.
ORDER_DELTAS = """
CREATE TEMP TABLE order_deltas ON COMMIT DROP AS
SELECT created_date, product_id, sum(n)::bigint AS orders, sum(q)::bigint AS quantity
FROM (
    SELECT created_date, product_id, 1 AS n, quantity::bigint AS q
    FROM checked WHERE action IN ('insert', 'update')
    UNION ALL
    SELECT old_created_date, old_product_id, -1, -old_quantity::bigint
    FROM checked WHERE action = 'update'
) d
GROUP BY created_date, product_id
HAVING sum(n) <> 0 OR sum(q) <> 0
"""

# Products whose price changed: every stored sale of theirs changes revenue.
PRICE_CHANGES = """
CREATE TEMP TABLE price_changes ON COMMIT DROP AS
SELECT product_id, price - old_price AS delta
FROM checked WHERE action = 'update' AND price <> old_price
"""


# --- reading ------------------------------------------------------------------------------

UPLOAD_COLUMNS = """
upload_id, kind, filename, sha256, status, on_conflict, rows_total, rows_inserted,
rows_updated, rows_unchanged, rows_rejected, rejects_by_code, warnings, bytes_received,
columns, error, started_at, finished_at
"""

GET_UPLOAD = f"SELECT {UPLOAD_COLUMNS} FROM uploads WHERE upload_id = :id"

# Newest first, keyset on upload_id.
PAGE_UPLOADS = f"""
SELECT {UPLOAD_COLUMNS} FROM uploads
WHERE (CAST(:before AS bigint) IS NULL OR upload_id < :before)
    AND (CAST(:kind AS text) IS NULL OR kind = :kind)
ORDER BY upload_id DESC LIMIT :limit
"""

# An upload still `running` whose loading session is gone (its lock is free) died with
# its process or connection: nothing of it committed, so it is failed.
SWEEP_DEAD = """
UPDATE uploads SET status = 'failed', finished_at = clock_timestamp(),
    error = jsonb_build_object('code', 'interrupted', 'message',
        'The upload stopped before it finished; nothing of it was loaded.')
WHERE status = 'running' AND pg_try_advisory_xact_lock(:base + upload_id)
"""

PAGE_REJECTS = """
SELECT row_number, error_code, error_message, fields FROM rejects
WHERE upload_id = :id AND row_number > :after
ORDER BY row_number LIMIT :limit
"""

ALL_REJECTS = """
SELECT row_number, error_code, error_message, fields FROM rejects
WHERE upload_id = :id ORDER BY row_number
"""

WIDEST_REJECT = "SELECT max(cardinality(fields)) FROM rejects WHERE upload_id = :id"
