"""Orders judged row by row (`judged`): each checked row against the products, the file's
other rows (the first valid occurrence of an id wins) and the stored order of its id,
with the action it takes. `orders.load` runs it for a file not loaded whole."""

from __future__ import annotations

from app.uploads.plan import Plan
from app.uploads.sql import checks, problems

# What an order is, for telling an update from an unchanged row.
_VALUES = "(m.product_id, m.quantity, m.created_date, m.unit_price, m.basket)"
_OLD_VALUES = (
    "(m.old_product_id, m.old_quantity, m.old_created_date, m.old_unit_price, m.old_basket)"
)
# Optional columns: the typed value's name, and the file's column it comes from.
_OPTIONAL = (("unit_price", "unit_price"), ("basket", "order_id"))


def _ranked(plan: Plan) -> str:
    """Each row's occurrence of its id among the valid rows (the first valid one wins),
    and the line of the first; skipped when the file's ids are unique and new."""
    if not plan.sort_occurrences:
        return "SELECT k.*, 1 AS occurrence, NULL::bigint AS first_line FROM known k"
    return """SELECT k.*, row_number() OVER w AS occurrence,
        first_value(k.line) OVER w AS first_line
    FROM known k
    WINDOW w AS (PARTITION BY k.ok, k.order_id ORDER BY k.line)"""


def _met(plan: Plan) -> str:
    """Each ranked row with the stored order it meets (none when no stored id is in the
    file's range: nothing to look up)."""
    if not plan.stored_in_range:
        return """SELECT r.*, NULL::bigint AS old_order_id, NULL::integer AS old_product_id,
        NULL::integer AS old_quantity, NULL::date AS old_created_date,
        NULL::numeric(12, 2) AS old_unit_price, NULL::text AS old_basket
    FROM ranked r"""
    return """SELECT r.*, o.order_id AS old_order_id, o.product_id AS old_product_id,
        o.quantity AS old_quantity, o.created_date AS old_created_date,
        o.unit_price AS old_unit_price, o.basket AS old_basket
    FROM ranked r
    LEFT JOIN orders o ON o.order_id = r.order_id AND r.ok AND r.occurrence = 1"""


# What a `conflict` says of the stored order (problems.conflict's pattern and values).
_STORED = (
    "order %s is stored with product_id %s, quantity %s, created_date %s%s",
    """m.old_order_id, m.old_product_id, m.old_quantity, m.old_created_date,
                ', unit_price ' || m.old_unit_price""",
)


def _kept(plan: Plan, name: str, source: str) -> str:
    """A row's value of an optional column (its unit price, its basket): the file's
    (empty: none), or, when the file has no such column, the stored order's (a file that
    does not say keeps it)."""
    return f"m.{name}" if source in plan.has else f"m.old_{name}"


def _optional(plan: Plan) -> str:
    return ", ".join(_kept(plan, name, source) for name, source in _OPTIONAL)


def judged(plan: Plan) -> str:
    """Every checked row with its problem (first found) and its `action`: reject,
    insert, unchanged or update (`orders.load` keeps and counts them)."""
    return f"""
WITH known AS (
    SELECT t.*, (t.problem IS NULL AND p.product_id IS NOT NULL) AS ok
    FROM {checks.rows(plan)} t LEFT JOIN products p ON p.product_id = t.product_id
),
ranked AS (
    {_ranked(plan)}
),
met AS (
    {_met(plan)}
),
problems AS (
    SELECT m.ord, m.line, m.order_id, m.order_code, m.product_id, m.quantity, m.created_date,
        {_kept(plan, "unit_price", "unit_price")} AS unit_price,
        {_kept(plan, "basket", "order_id")} AS basket, m.old_product_id, m.old_quantity,
        m.old_created_date, m.old_unit_price, m.old_basket,
        CASE
            WHEN m.problem IS NOT NULL THEN m.problem
            WHEN NOT m.ok THEN ARRAY['unknown_product',
                format('product_id %s is not a stored product',
                    coalesce(m.product_code, m.product_id::text))]
            WHEN m.occurrence > 1 THEN ARRAY['duplicate_in_file',
                format('id %s already appears on line %s',
                    coalesce(m.order_code, m.order_id::text), m.first_line)]
            WHEN m.old_order_id IS NULL OR {_OLD_VALUES} IS NOT DISTINCT FROM
                (m.product_id, m.quantity, m.created_date, {_optional(plan)}) THEN NULL
            {problems.conflict(plan, *_STORED)}
        END AS problem
    FROM met m
)
SELECT m.*,
    CASE
        WHEN m.problem IS NOT NULL THEN 'reject'
        WHEN m.old_product_id IS NULL THEN 'insert'
        WHEN {_OLD_VALUES} IS NOT DISTINCT FROM {_VALUES} THEN 'unchanged'
        ELSE 'update'
    END AS action
FROM problems m
"""
