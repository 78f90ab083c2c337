"""Checks: every staged row with its first problem, or its typed values; generated from
the rule table (uploads/rules.py) for both paths.

Owns `checked_rows` (the careful path's rows, and every products upload's, checked and typed).
Orders on the fast path are checked straight from their staging table (`rows`): integers by
their rules' typed forms, the date by its text rules once per distinct value.
"""

from __future__ import annotations

from functools import cache

from app.catalog.models import MAX_CODE, MAX_INT4
from app.uploads import fixed_offset
from app.uploads.models import UploadKind
from app.uploads.plan import Plan
from app.uploads.rules import (
    DAY_PART_OK,
    HAS_OFFSET,
    MAX_INT8,
    RULES,
    TIME_HEAD_OK,
    TIME_PART_OK,
    TIME_TAIL_OK,
    WHITESPACE,
    in_zone,
    integer_id,
    zone_date,
)
from app.uploads.sql import problems, staging

TYPED = "checked_rows"
TABLES = (TYPED,)

# Typed values per kind: the column, its SQL type, and the file's column it comes from
# (an optional one the file lacks gives NULL), cast to the type (`_cast`).
_TYPES = {
    UploadKind.ORDERS: (
        ("order_id", "bigint", "id"),
        ("product_id", "integer", "product_id"),
        ("quantity", "integer", "quantity"),
        ("created_date", "date", "created_date"),
        ("unit_price", "numeric(12, 2)", "unit_price"),
        ("basket", "text", "order_id"),
        ("order_code", "text", "id"),
        ("product_code", "text", "product_id"),
    ),
    UploadKind.PRODUCTS: (
        ("product_id", "integer", "id"),
        ("name", "text", "name"),
        ("category", "text", "category"),
        ("price", "numeric(12, 2)", "price"),
        ("effective_from", "date", "effective_from"),
        ("product_code", "text", "id"),
    ),
}

# With text ids (`?ids=text`): an id is its integer key, or else its code.
_ID_HIGHS = {"order_id": MAX_INT8, "order_code": MAX_INT8, "product_id": MAX_INT4,
             "product_code": MAX_INT4}  # fmt: skip


def _text_id_cast(name: str, source: str) -> str:
    is_integer = integer_id(_ID_HIGHS[name]).format(v=source)
    if name.endswith("_code"):
        return f"CASE WHEN NOT {is_integer} THEN {source} END"
    return f"CASE WHEN {is_integer} THEN {source}::bigint END"


def _cast(plan: Plan, name: str, sql_type: str, source: str) -> str:
    """A typed value from its checked text: text as it is, anything else cast; a code
    (`*_code`: the id as written, when it is not an integer) NULL unless ids are text."""
    if source not in plan.columns:
        return f"NULL::{sql_type}"
    if plan.text_ids and name in _ID_HIGHS:
        return _text_id_cast(name, source)
    if name.endswith("_code"):
        return "NULL::text"
    return source if sql_type == "text" else f"{source}::{sql_type}"


def _normalized(plan: Plan, name: str) -> str:
    return RULES[plan.kind].normalized(name, plan.dialect, name)


# --- the careful path (and products): staged text → `checked_rows` ------------------------------


@cache
def create_typed(plan: Plan) -> str:
    cols = ", ".join(f"{name} {sql_type}" for name, sql_type, _ in _TYPES[plan.kind])
    return (
        f"CREATE TEMP TABLE {TYPED} (ord bigint, line bigint, problem text[], {cols})"
        " ON COMMIT DROP"
    )


@cache
def fill_typed(plan: Plan) -> str:
    """Every staged text row with its first problem (`ARRAY[code, message]`) or its typed
    values. Parameters: $1 header lines, $2 header width.

    `OFFSET 0` keeps each level a step of its own, so that every trim and check runs
    once per row rather than once per later mention.
    """
    rules = plan.rules
    values = ", ".join(f"{_normalized(plan, name)} AS {name}" for name in plan.columns)
    wrong_count = (
        "WHEN bad_count IS NOT NULL THEN ARRAY['wrong_field_count',"
        " format('expected %s fields, found %s', $2::integer, bad_count)]"
    )
    names = ", ".join(name for name, _, _ in _TYPES[plan.kind])
    typed = ", ".join(
        f"CASE WHEN problem IS NULL THEN {_cast(plan, *spec)} END" for spec in _TYPES[plan.kind]
    )
    return f"""
INSERT INTO {TYPED} (ord, line, problem, {names})
SELECT ord, line, problem, {typed}
FROM (
    SELECT v.*, {problems.first_problem(rules.checked(plan.columns), before=wrong_count)} AS problem
    FROM (
        SELECT ord, line, bad_count, {values}
        FROM ({staging.text_rows(plan)} OFFSET 0) t OFFSET 0
    ) v OFFSET 0
) j
"""


# --- orders on the fast path: checked straight from staging --------------------------------


def _fast_date(plan: Plan) -> str:
    """The one column of fast-path orders that is staged as text: the date."""
    rules = RULES[UploadKind.ORDERS]
    text_fields = [name for name in rules.required if name not in rules.typed_on_fast_path]
    assert text_fields == [rules.required[-1]], "per-value checks come last in the order"
    return text_fields[0]


# A date-time the fast path reads on its row (`fast_day`) rather than in `fast_dates`:
# its first 10 characters a real date of year 0002 to 9998 (no offset can then move it
# out of years 0001 to 9999, which `in_zone`'s text and the date rules hold), and the
# rest a time part as `TIME_PART_OK` has it (its head and tail checked apart). Such a
# value has no space or quote around it, so it is its own trimmed text, and what
# `date_time_in` makes of it is its date part or, with an offset, `zone_date`'s date.
_QUICK_DAY_OK = f"({DAY_PART_OK} AND substr({{v}}, 1, 4) < '9999')"
# Of such a value: whether it has `Z` or an offset (HAS_OFFSET over its time part; its
# date part holds no `+`, its two `-` are in its first 10 characters); LIKE: it is cheap.
_QUICK_ZONED = (
    "({v} LIKE '%Z' OR {v} LIKE '%z' OR {v} LIKE '%+%' OR {v} LIKE '" + "_" * 10 + "%-%')"
)


def _quick(plan: Plan) -> bool:
    """Whether date-times may be read on their rows: not with an explicit date format
    (its steps then run on every value, in `fast_dates`)."""
    return plan.dialect.date_format is None


def all_timed(plan: Plan) -> str:
    """An aggregate over staged rows `s`: whether every date is a date-time (has a
    `:`), with date-times read on their rows. Then `fast_dates` holds only the odd ones
    (a part that is not the quick kind, or that fails), most often none. False without
    date-times read on their rows."""
    if not _quick(plan):
        return "false"
    return f"coalesce(bool_and(strpos(s.{_fast_date(plan)}, ':') > 0), false)"


def _odd_values(plan: Plan) -> str:
    """CTEs ending in `odd (raw)`: the distinct staged dates `fast_dates` checks (with
    date-times read on their rows: dates, empty values, and date-times with a part not of
    the quick kind). Each distinct part of the date-times (date, time head, time tail) is
    checked once, all three grouped in one scan (`quick_parts`); the rows of a part that
    failed (rare) are looked for only if one did (the AND stops there)."""
    date = _fast_date(plan)
    if not _quick(plan):
        return f"odd AS ({staging.distinct_values(date)})"
    parts = {"day_part": f"left({date}, 10)", "time_head": f"substr({date}, 11, 6)",
             "time_tail": f"substr({date}, 17)"}  # fmt: skip
    bad = " OR ".join(
        f"{expr} IN (SELECT {name} FROM quick_parts WHERE {name} IS NOT NULL AND NOT ok)"
        for name, expr in parts.items()
    )
    grouped = staging.grouped_values(parts, where=f"strpos({date}, ':') > 0")
    odd = f"{date} IS NULL OR strpos({date}, ':') = 0 OR ("
    odd += f"(SELECT bool_or(NOT ok) FROM quick_parts) AND ({bad}))"
    return f"""quick_parts AS MATERIALIZED (
        SELECT day_part, time_head, time_tail,
            CASE WHEN day_part IS NOT NULL THEN {_QUICK_DAY_OK.format(v="day_part")}
                WHEN time_head IS NOT NULL THEN {TIME_HEAD_OK.format(v="time_head")}
                ELSE {TIME_TAIL_OK.format(v="time_tail")} END AS ok
        FROM ({grouped}) p
    ),
    odd AS ({staging.distinct_values(date, where=odd)})"""


@cache
def fast_dates(plan: Plan) -> str:
    """Fast-path orders: distinct staged dates (`raw`), each once, with its first problem
    and, when it has none, its `day`. A file of dates holds a few hundred in a million
    rows: checked and cast here once each, then joined (`fast_day`). A file of date-times
    holds nearly a million distinct values, too many to check and join one by one
    (~6 µs each): their date parts (a few hundred) and time parts (at most 86,400 × the
    offsets) are each checked once, and a date-time whose two parts pass is left out
    here and read on its row (`fast_day`: its date part, or the cast into the zone).
    The rest (dates, empty values, date-times of an odd part) are checked here by the
    careful path's steps (`rules.date_time_in` checks a whole value at once; here each
    distinct part of them once, then two joins)."""
    date = _fast_date(plan)
    rules = RULES[UploadKind.ORDERS]
    date_rules = rules.of(date)
    own = rules.own_step(date).format(v=f"NULLIF(btrim(raw, {WHITESPACE}), '')")
    read = f"""CASE WHEN NOT x.timed THEN x.v
            WHEN NOT coalesce(t.ok AND d.ok, false) THEN x.v
            WHEN t.zoned THEN {in_zone(plan.dialect.timezone).format(v="x.v")}
            ELSE left(x.v, 10) END"""
    for step in rules.date_format_steps(plan.dialect):
        read = step.format(v=f"({read})")
    return f"""
    WITH {_odd_values(plan)},
    vals AS MATERIALIZED (
        SELECT raw, v, strpos(v, ':') > 0 AS timed, left(v, 10) AS day_part,
            substr(v, 11) AS time_part
        FROM (SELECT raw, {own} AS v FROM odd OFFSET 0) o
    ),
    times AS MATERIALIZED (
        SELECT part, {TIME_PART_OK.format(v="part")} AS ok,
            {HAS_OFFSET.format(v="part")} AS zoned
        FROM (SELECT DISTINCT time_part AS part FROM vals WHERE timed) p
    ),
    days AS MATERIALIZED (
        SELECT part, {DAY_PART_OK.format(v="part")} AS ok
        FROM (SELECT DISTINCT day_part AS part FROM vals WHERE timed) p
    )
    SELECT raw, problem, CASE WHEN problem IS NULL THEN {date}::date END AS day
    FROM (
        SELECT raw, {date}, {problems.first_problem(date_rules)} AS problem
        FROM (
            SELECT x.raw, {read} AS {date}
            FROM vals x
            LEFT JOIN times t ON t.part = x.time_part AND x.timed
            LEFT JOIN days d ON d.part = x.day_part AND x.timed
            OFFSET 0
        ) u OFFSET 0
    ) v
"""


def fast_day(plan: Plan, dates: str, raw: str) -> str:
    """A fast-path row's date, its staged text `raw` LEFT JOINed to `fast_dates` as
    `dates` on `dates.raw = raw`: the joined day, or, for a date-time read on its row
    (one `fast_dates` left out), its date part (no offset, or the zone's own one through
    the file: `fixed_offset`) or its date in the zone. A row whose date is empty or has
    a problem has no day (its problem says why)."""
    if not _quick(plan):
        return f"{dates}.day"
    zoned = _QUICK_ZONED.format(v=raw)
    in_zone_date = zone_date(plan.dialect.timezone).format(v=raw)
    return (
        f"CASE WHEN {dates}.raw IS NOT NULL THEN {dates}.day"
        f" WHEN {fixed_offset.written_in(raw)} THEN left({raw}, 10)::date"
        f" WHEN {zoned} THEN {in_zone_date} ELSE left({raw}, 10)::date END"
    )


def date_span(plan: Plan) -> str:
    """Two aggregates over staged rows `s`: the smallest and largest date, in byte order
    (`fixed_offset.settle` reads their date parts; a value that is not a date-time of
    the quick kind may start otherwise, and then none is read by its offset); NULL
    without date-times read on their rows."""
    if not _quick(plan):
        return "NULL::text, NULL::text"
    date = f"s.{_fast_date(plan)}"
    return f'min({date} COLLATE "C"), max({date} COLLATE "C")'


@cache
def fast_row_problem(plan: Plan, otherwise: str = "NULL") -> str:
    """Fast-path orders: a staged row's (`s`) first problem among those its own values
    show (the typed rules of its integers, a missing date), else `otherwise`."""
    rules = RULES[UploadKind.ORDERS]
    typed_branches = [
        branch
        for name in rules.typed_on_fast_path
        for branch in problems.branches(rules.of(name), "s.", typed=True)
    ]
    missing, *_ = rules.of(_fast_date(plan))
    raw_missing = problems.branch(missing, f"s.{_fast_date(plan)}", typed=True)
    return f"CASE {' '.join(typed_branches)} {raw_missing} ELSE {otherwise} END"


def trimmed(value: str) -> str:
    return f"NULLIF(btrim({value}, {WHITESPACE}), '')"


@cache
def fast_prices(plan: Plan) -> str:
    """Fast-path orders with a `unit_price` column: each distinct staged price once
    (`raw`), with its first problem and, if none, its `value` and `cents` (× 100, for
    sums in integers: `orders.money_in_cents`); a file holds far fewer prices than rows."""
    rules = RULES[UploadKind.ORDERS]
    price = rules.normalized("unit_price", plan.dialect, trimmed("raw"))
    return f"""
    SELECT raw, problem, CASE WHEN problem IS NULL THEN unit_price::numeric(12, 2) END AS value,
        CASE WHEN problem IS NULL THEN (unit_price::numeric(12, 2) * 100)::bigint END AS cents
    FROM (
        SELECT raw, unit_price, {problems.first_problem(rules.of("unit_price"))} AS problem
        FROM (
            SELECT raw, {price} AS unit_price
            FROM ({staging.distinct_values("unit_price")}) r OFFSET 0
        ) u OFFSET 0
    ) v
"""


def basket_problem(basket: str) -> str:
    """A basket's (`order_id`'s) first problem, over its trimmed text `basket`."""
    rules = RULES[UploadKind.ORDERS].of("order_id")
    found = (problems.branch(r, basket, typed=False) for r in rules)
    return f"CASE {' '.join(b for b in found if b)} END"


@cache
def _fast_orders(plan: Plan) -> str:
    """Fast-path orders with their first problem, typed ($1: header lines). The integers
    arrive typed (COPY refused what is not an integer: such a file takes the careful
    path), so only their typed rules remain; the date is text, checked once per distinct
    value by its text rules (`fast_dates`), and so is a unit price (`fast_prices`); a
    basket (`order_id`) is text, trimmed and checked on its row."""
    priced = "unit_price" in plan.has
    prices = f",\nprices AS MATERIALIZED ({fast_prices(plan)})" if priced else ""
    join = "\n    LEFT JOIN prices p ON p.raw = s.unit_price" if priced else ""
    price = "p.value" if priced else "NULL::numeric(12, 2)"
    later = ["d.problem", *(["p.problem"] if priced else []), basket_problem("b.basket")]
    return f"""
WITH dates AS MATERIALIZED ({fast_dates(plan)}){prices}
SELECT ord, line, problem,
    CASE WHEN problem IS NULL THEN id END AS order_id,
    CASE WHEN problem IS NULL THEN product_id::integer END AS product_id,
    CASE WHEN problem IS NULL THEN quantity::integer END AS quantity,
    CASE WHEN problem IS NULL THEN day END AS created_date,
    CASE WHEN problem IS NULL THEN unit_price END AS unit_price,
    CASE WHEN problem IS NULL THEN basket END AS basket,
    NULL::text AS order_code, NULL::text AS product_code
FROM (
    SELECT s.ord, s.line, s.id, s.product_id, s.quantity,
        {fast_day(plan, "d", f"s.{_fast_date(plan)}")} AS day, {price} AS unit_price,
        b.basket, {fast_row_problem(plan, f"coalesce({', '.join(later)})")} AS problem
    FROM ({staging.typed_order_rows(plan)}) s
    LEFT JOIN dates d ON d.raw = s.{_fast_date(plan)}{join}
    CROSS JOIN LATERAL (SELECT {trimmed("s.order_id")} AS basket) b
    OFFSET 0
) j
"""


# A line's key made by the service (a file without `id`): its order, its product and its
# occurrence among the order's lines of that product, in file order; a digest when longer
# than a code may be. The same file gives the same keys, so uploading it again changes
# nothing, and lines of one order added by a later file get keys of their own.
_LINE_KEY = (
    "basket || '/' || coalesce(product_code, product_id::text) || '/' || row_number() OVER ("
    "PARTITION BY basket, coalesce(product_code, product_id::text) ORDER BY ord)"
)


@cache
def resolve_codes(plan: Plan) -> list[str]:
    """With text ids: each checked row's ids that are codes resolved to their keys, the
    stored ones' or (a new product, a new line) a new negative surrogate; an order's
    product code that names no stored product stays unresolved (`unknown_product`). A
    file without `id` first gets its lines' keys made (`_LINE_KEY`)."""
    # The rows' statistics first: without them a self-join of a big file's rows could
    # be planned as a nested loop (seen: 541,909 lines, still running after 10 minutes).
    analyzed = f"ANALYZE {TYPED}"
    products = _stored_keys("product_id", "product_code", "products")
    if plan.kind is UploadKind.PRODUCTS:
        return [
            analyzed,
            products,
            _new_surrogates("product_id", "product_code", "product_code_ids", 32),
        ]
    out = [analyzed, products]
    if "id" not in plan.columns:
        out += [
            f"""UPDATE {TYPED} SET problem = ARRAY['missing_value', 'order_id is empty: a line'
    || ' without an id of its own is keyed by its order''s id']
WHERE problem IS NULL AND basket IS NULL""",
            f"""UPDATE {TYPED} t SET order_code = CASE WHEN char_length(k.code) <= {MAX_CODE}
    THEN k.code ELSE 'md5:' || md5(k.code) END
FROM (SELECT ord, {_LINE_KEY} AS code FROM {TYPED} WHERE problem IS NULL) k
WHERE k.ord = t.ord""",
        ]
    out += [
        _stored_keys("order_id", "order_code", "orders"),
        _new_surrogates("order_id", "order_code", "order_code_ids", 64),
    ]
    return out


def _stored_keys(key: str, code: str, table: str) -> str:
    """Codes a stored row of `table` has: that row's key."""
    return f"""UPDATE {TYPED} t SET {key} = s.{key} FROM {table} s
WHERE t.{code} IS NOT NULL AND s.code = t.{code}"""


def _new_surrogates(key: str, code: str, sequence: str, bits: int) -> str:
    """New codes (valid rows whose code no stored row has) get a negative key each."""
    low = 2 ** (bits - 1)
    # MATERIALIZED: made once; rescanned per row of a nested loop, it would draw new keys.
    # Keys count up from the type's lowest value, in the order the codes first appear:
    # coded rows sort among themselves as they arrived.
    return f"""WITH f AS MATERIALIZED (
    SELECT c.code, (nextval('{sequence}') - {low}) AS id
    FROM (SELECT {code} AS code, min(ord) AS first FROM {TYPED}
        WHERE {code} IS NOT NULL AND {key} IS NULL AND problem IS NULL
        GROUP BY {code} ORDER BY first) c
)
UPDATE {TYPED} t SET {key} = f.id FROM f
WHERE t.{code} = f.code AND t.{key} IS NULL AND t.problem IS NULL"""


def via_typed(plan: Plan) -> bool:
    """Whether the plan's rows are checked into `checked_rows` (all but fast-path orders)."""
    return not staging.typed_orders(plan)


def rows(plan: Plan) -> str:
    """The checked rows, as a FROM item: `ord, line, problem` and the typed columns."""
    return TYPED if via_typed(plan) else f"({_fast_orders(plan)})"


def id_range(plan: Plan) -> str:
    """The file's valid id range, and whether no id occurs in it twice."""
    if not via_typed(plan):
        return staging.ORDERS_ID_RANGE
    key = "order_id" if plan.kind is UploadKind.ORDERS else "product_id"
    return f"SELECT min({key}), max({key}), count({key}) = count(DISTINCT {key}) FROM {TYPED}"


def referenced_products(plan: Plan) -> str:
    """The product ids the checked orders name."""
    if not via_typed(plan):
        return staging.referenced_products()
    return f"SELECT DISTINCT product_id FROM {TYPED} WHERE problem IS NULL"


def analyze(plan: Plan) -> str:
    return f"ANALYZE {TYPED}" if via_typed(plan) else staging.analyze(plan)
