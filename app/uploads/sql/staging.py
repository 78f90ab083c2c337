"""Staging: the temporary tables the file's rows are COPYed into, and every read of them.

Owns `staged_text` (every field as text: the careful path, and products on the fast
path) and `staged_orders` (orders on the fast path, integers typed by COPY itself). Other
modules read them only through the fragments below. `ord` numbers records in file order.
"""

from __future__ import annotations

from functools import cache

from app.uploads.models import UploadKind
from app.uploads.plan import Plan
from app.uploads.rules import RULES

TEXT = "staged_text"
TYPED_ORDERS = "staged_orders"
TABLES = (TEXT, TYPED_ORDERS)


def typed_orders(plan: Plan) -> bool:
    """Whether the plan stages into `staged_orders` (orders on the fast path)."""
    return plan.fast and plan.kind is UploadKind.ORDERS


def _optional(plan: Plan) -> list[str]:
    """The optional columns the file has, in the kind's order: staged as text."""
    return [name for name in RULES[plan.kind].optional if name in plan.has]


def table(plan: Plan) -> str:
    return TYPED_ORDERS if typed_orders(plan) else TEXT


# `ord` numbers the records 1, 2, 3 … in the order COPY writes them: one session's own
# sequence, so a cache of values changes nothing but the cost (a million rows: 0.43 s
# of COPY on PostgreSQL 15 with the default cache of one, 0.30 s with this, 0.23 s with
# no numbering at all).
ORD_CACHE = 100_000


@cache
def create(plan: Plan) -> str:
    if typed_orders(plan):
        optional = "".join(f", {name} text" for name in _optional(plan))
        return (
            f"CREATE TEMP TABLE {TYPED_ORDERS} ("
            f" ord bigint GENERATED ALWAYS AS IDENTITY (CACHE {ORD_CACHE}),"
            f" id bigint, product_id bigint, quantity bigint, created_date text{optional}"
            ") ON COMMIT DROP"
        )
    fields = ", ".join(f"{name} text" for name in plan.columns)
    return (
        f"CREATE TEMP TABLE {TEXT} ("
        f" ord bigint GENERATED ALWAYS AS IDENTITY (CACHE {ORD_CACHE}),"
        f" line bigint, bad_count integer, raw jsonb, {fields}"
        ") ON COMMIT DROP"
    )


def copy_columns(plan: Plan) -> list[str]:
    """The columns a COPY into `table(plan)` fills, in the order its data has them."""
    if plan.fast:
        return list(plan.order)
    return ["line", "bad_count", "raw", *plan.columns]


# Physical line breaks in a text (CRLF, LF and a lone CR each end one line, as Python's
# csv module counts them): a record whose quoted fields hold some spans as many more.
_BREAKS = (
    "char_length({f}) * 2 - char_length(replace({f}, E'\\n', ''))"
    " - char_length(replace({f}, E'\\r', '')) - (char_length({f})"
    " - char_length(replace({f}, E'\\r\\n', ''))) / 2"
)


def _breaks(plan: Plan) -> str:
    return " + ".join(_BREAKS.format(f=f"coalesce({name}, '')") for name in plan.columns)


@cache
def number_lines(plan: Plan) -> str:
    """Fast path, text staging, records that span lines: number each by the line it
    starts on ($1 header lines) and answer the lines they span in all, which the caller
    compares with the file's own count. Rows numbered by records (a sheet's, Parquet's)
    keep their number by `ord` (`text_rows`): only the lines are counted."""
    numbered = (
        ""
        if plan.dialect.numbered_by_records
        else f""",
numbered AS (
    UPDATE {TEXT} s SET line = t.line FROM starts t WHERE t.ord = s.ord
)"""
    )
    return f"""
WITH spans AS (
    SELECT ord, {_breaks(plan)} AS breaks FROM {TEXT}
),
starts AS (
    SELECT ord, $1 + ord + coalesce(sum(breaks) OVER (ORDER BY ord
        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS line
    FROM spans
){numbered}
SELECT count(*) + coalesce(sum(breaks), 0) FROM spans
"""


# --- reads of the staged rows, for the modules that judge them --------------------------


@cache
def text_rows(plan: Plan) -> str:
    """Staged text rows: `ord, line, bad_count` and each field of the plan's columns
    trimmed, NULL when empty ($1: header lines)."""
    from app.uploads.rules import WHITESPACE

    trimmed = ", ".join(
        f"NULLIF(btrim(s.{name}, {WHITESPACE}), '') AS {name}" for name in plan.columns
    )
    return (
        f"SELECT s.ord, COALESCE(s.line, s.ord + $1) AS line, s.bad_count, {trimmed} FROM {TEXT} s"
    )


@cache
def typed_order_rows(plan: Plan) -> str:
    """Staged fast-path orders: `ord, line`, the typed integers, and the text of the date
    and of each optional column (NULL when the file lacks it) ($1: header lines)."""
    optional = "".join(
        f", s.{name}" if name in plan.has else f", NULL::text AS {name}"
        for name in RULES[plan.kind].optional
    )
    return (
        f"SELECT s.ord, s.ord + $1 AS line, s.id, s.product_id, s.quantity, s.created_date"
        f"{optional} FROM {TYPED_ORDERS} s"
    )


@cache
def typed_order_values(plan: Plan) -> str:
    """The same rows' values alone (no parameter): what a file whose every row passed
    inserts."""
    optional = "".join(
        f", s.{name}" if name in plan.has else f", NULL::text AS {name}"
        for name in RULES[plan.kind].optional
    )
    return f"SELECT s.id, s.product_id, s.quantity, s.created_date{optional} FROM {TYPED_ORDERS} s"


def distinct_values(column: str, where: str = "") -> str:
    """The distinct raw values of one column of `staged_orders` (or of an expression over
    its columns), of the rows `where` holds if given."""
    return f"SELECT DISTINCT {column} AS raw FROM {TYPED_ORDERS}" + (
        f" WHERE {where}" if where else ""
    )


def grouped_values(parts: dict[str, str], where: str) -> str:
    """Each distinct value of each of `parts` (name: an expression over the columns of
    `staged_orders`) among the rows `where` holds, in one scan: a row per value, the
    other parts NULL."""
    columns = ", ".join(f"{expr} AS {name}" for name, expr in parts.items())
    sets = ", ".join(f"({i})" for i in range(1, len(parts) + 1))
    return f"SELECT {columns} FROM {TYPED_ORDERS} WHERE {where} GROUP BY GROUPING SETS ({sets})"


def referenced_products() -> str:
    """Product ids that fast-path orders name (valid or not: the lock covers more)."""
    return f"SELECT DISTINCT product_id FROM {TYPED_ORDERS}"


ORDERS_ID_RANGE = (
    f"SELECT min(id), max(id), count(id) = count(DISTINCT id) FROM {TYPED_ORDERS} WHERE id >= 1"
)


def analyze(plan: Plan) -> str:
    # The planner then knows how many rows the joins and sorts that follow will meet.
    return f"ANALYZE {table(plan)}"


@cache
def fields_by_ord(plan: Plan) -> str:
    """`ord, fields`: each staged record's fields as received, in the file's column order
    (all of them, for files with extra columns or rows of the wrong width)."""
    if typed_orders(plan):
        # Fast-path orders hold integers that are canonical as written (the fast path
        # takes no sign, space or leading zero before a digit), so their text is the
        # text received.
        by_position = ", ".join(f"s.{name}::text" for name in plan.order)
        return f"SELECT s.ord, ARRAY[{by_position}] AS fields FROM {TYPED_ORDERS} s"
    by_position = ", ".join(f"s.{name}" for name in plan.order)
    return f"""SELECT s.ord,
    CASE WHEN s.raw IS NOT NULL
        THEN ARRAY(SELECT f.v FROM jsonb_array_elements_text(s.raw) WITH ORDINALITY f(v, i)
                   ORDER BY f.i)
        ELSE ARRAY[{by_position}]
    END AS fields
FROM {TEXT} s"""


@cache
def date_times(plan: Plan) -> str:
    """How many staged dates are written as date-times (with a time of day: a `:`); less
    those rejected (`rejects.INVALID_DATE_TIMES`), the report's `dialect.timestamps`."""
    from app.uploads.rules import RULES

    (date,) = RULES[plan.kind].dates
    table = TYPED_ORDERS if typed_orders(plan) else TEXT
    return f"SELECT count(*) FROM {table} WHERE strpos({date}, ':') > 0"


def decimal_commas(plan: Plan) -> str:
    """Whether a staged price holds a comma (the report's `dialect.decimal`)."""
    fields = [name for name in RULES[plan.kind].decimals if name in plan.columns]
    if not fields or typed_orders(plan):
        return "SELECT false"
    seen = " OR ".join(f"strpos({name}, ',') > 0" for name in fields)
    return f"SELECT coalesce(bool_or({seen}), false) FROM {TEXT}"
