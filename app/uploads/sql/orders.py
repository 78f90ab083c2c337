"""Orders: judge every checked row against products, the file's other rows and the stored
orders (`judging`), and load the good ones, in one statement (`load`). A new file whose
every row passes is loaded whole instead: one pass finds that out (`verdict`), and its
rows then go in without a judged copy of each (`load_whole`).

Owns `checked_orders`: the rejects and the updates that `load` keeps (the inserted rows
go straight into `orders`); and `whole_dates`, the dates of a file loaded whole. Orders
files are the big ones, so the judged rows are written once, to memory, not to a table
that three more statements would read. Each fragment below is switched by at most one
fact of the plan.
"""

from __future__ import annotations

from functools import cache

from app.analytics import rollups
from app.uploads.plan import Plan
from app.uploads.sql import bookkeeping, checks, judging, staging

CHECKED = "checked_orders"
WHOLE_DATES = "whole_dates"
WHOLE_PRICES = "whole_prices"
TABLES = (CHECKED, WHOLE_DATES, WHOLE_PRICES)

CREATE_CHECKED = f"""
CREATE TEMP TABLE {CHECKED} (
    ord bigint, line bigint, order_id bigint, product_id integer, quantity integer,
    created_date date, unit_price numeric(12, 2), basket text, old_product_id integer,
    old_quantity integer, old_created_date date, old_unit_price numeric(12, 2),
    old_basket text, problem text[], action text
) ON COMMIT DROP
"""

# The upload's id, stamped on what it writes (orders.upload_id is an integer).
UPLOAD = f"CAST({bookkeeping.CURRENT_UPLOAD} AS integer)"

_COLUMNS = (
    "ord, line, order_id, product_id, quantity, created_date, unit_price, basket,"
    " old_product_id, old_quantity, old_created_date, old_unit_price, old_basket, problem,"
    " action"
)


def lock_referenced_products(plan: Plan) -> str:
    """The products the rows reference, locked as the foreign key's trigger would lock
    them, so that none can go away before the upload commits. Answers how many were
    locked and how many the rows reference: equal when every one is stored."""
    return f"""
WITH referenced AS MATERIALIZED ({checks.referenced_products(plan)}),
locked AS (
    SELECT 1 FROM products p
    WHERE p.product_id IN (SELECT product_id FROM referenced)
    FOR KEY SHARE OF p
)
SELECT (SELECT count(*) FROM locked), (SELECT count(product_id) FROM referenced)
"""


# An order's units valued at the list price (those without a unit price of their own),
# and its revenue fixed by its own unit price.
def _listed(prefix: str = "", sign: str = "") -> str:
    return (
        f"{sign}CASE WHEN {prefix}unit_price IS NULL THEN {prefix}quantity ELSE 0 END AS lq,"
        f" {sign}coalesce({prefix}unit_price * {prefix}quantity, 0) AS fixed"
    )


# The same, summed over a group of orders.
_LISTED_SUMS = (
    "coalesce(sum(quantity) FILTER (WHERE unit_price IS NULL), 0),"
    " coalesce(sum(unit_price * quantity), 0)"
)
# The same over rows priced in integer cents (`cents`, NULL for a row at the list price):
# a bigint multiply and add per row instead of numeric ones, exact while no sum leaves
# bigint (`money_in_cents`); scaled back to the price's two places once per group.
_CENTS_SUMS = (
    "coalesce(sum(quantity) FILTER (WHERE cents IS NULL), 0),"
    " coalesce(bigint_sum(cents * quantity) * 0.01, 0)"
)


def _changes(plan: Plan) -> str:
    """What the judged rows change in the sales: an inserted order adds itself; an
    updated one (only where stored ids are met) adds its new values and takes away its
    old ones."""
    new = f"""SELECT created_date, product_id, 1 AS n, quantity AS q, {_listed()}
        FROM judged"""
    if not plan.stored_in_range:
        return f"{new} WHERE action = 'insert'"
    return f"""{new} WHERE action IN ('insert', 'update')
        UNION ALL
        SELECT old_created_date, old_product_id, -1, -old_quantity, {_listed("old_", "-")}
        FROM judged WHERE action = 'update'"""


def _deltas(plan: Plan) -> str:
    """The sums of the changes, per product and day, for the rollups; none when a
    summarizer sums the new orders beside this statement."""
    if plan.sum_aside:
        return ""
    summed = rollups.add_deltas(
        f"""SELECT created_date, product_id, sum(n), sum(q), sum(lq), sum(fixed)
    FROM ({_changes(plan)}) d
    GROUP BY created_date, product_id
    HAVING sum(n) <> 0 OR sum(q) <> 0 OR sum(lq) <> 0 OR sum(fixed) <> 0"""
    )
    out = f",\ndeltas AS (\n    {summed}\n)"
    if "order_id" in plan.has or plan.stored_in_range:
        out += f",\nbaskets AS (\n    {_basket_deltas()}\n)"
    return out


def _basket_deltas() -> str:
    """What the judged rows change in the baskets' lines per day: an inserted or updated
    line adds one to its basket on its day; an updated one takes one from its old."""
    return rollups.add_basket_deltas(
        """SELECT basket, created_date, sum(n)
    FROM (
        SELECT basket, created_date, 1 AS n FROM judged
        WHERE action IN ('insert', 'update') AND basket IS NOT NULL
        UNION ALL
        SELECT old_basket, old_created_date, -1 FROM judged
        WHERE action = 'update' AND old_basket IS NOT NULL
    ) b
    GROUP BY basket, created_date
    HAVING sum(n) <> 0"""
    )


@cache
def load(plan: Plan) -> str:
    """Judge every row and load the good ones, in one pass: insert the new orders, keep
    the rejects and updates in `checked_orders`, add the changes to the rollups' deltas
    (unless summed aside), and answer rows and inserted units per action and code.
    Parameters: those of `checks.rows(plan)`."""
    return f"""
WITH judged AS MATERIALIZED ({judging.judged(plan)}),
inserted AS (
    INSERT INTO orders
        (order_id, code, product_id, quantity, created_date, unit_price, basket, upload_id)
    SELECT order_id, order_code, product_id, quantity, created_date, unit_price, basket,
        {UPLOAD}
    FROM judged WHERE action = 'insert'
),
kept AS (
    INSERT INTO {CHECKED} ({_COLUMNS})
    SELECT {_COLUMNS} FROM judged WHERE action IN ('reject', 'update')
){_deltas(plan)}
SELECT action, problem[1] AS code, count(*) AS n, coalesce(sum(quantity), 0) AS units
FROM judged GROUP BY 1, 2
"""


def may_load_whole(plan: Plan) -> bool:
    """Whether the file may be loaded whole: fast-path orders whose ids are unique in the
    file and new to the table (so a row that passes its checks is an insert)."""
    return staging.typed_orders(plan) and not plan.sort_occurrences


# --- a file loaded whole: `WHOLE_DATES` (and prices), `verdict`, `load_whole` if whole --


@cache
def create_whole_dates(plan: Plan, to_fill: bool = False) -> str:
    """The file's distinct dates, checked and cast once (`checks.fast_dates`), for the
    verdict and the insert; `to_fill`: the table empty, for the dates the other
    connection checked (`LIMIT 0` returns before any of the statement's scans)."""
    empty = " LIMIT 0" if to_fill else ""
    return f"CREATE TEMP TABLE {WHOLE_DATES} ON COMMIT DROP AS {checks.fast_dates(plan)}{empty}"


ANALYZE_WHOLE_DATES = f"ANALYZE {WHOLE_DATES}"


@cache
def create_whole_prices(plan: Plan, to_fill: bool = False) -> str | None:
    """A file with `unit_price`: its distinct prices, checked and cast once
    (`checks.fast_prices`), for the verdict and the insert; `to_fill` as for the dates."""
    if "unit_price" not in plan.has:
        return None
    empty = " LIMIT 0" if to_fill else ""
    return f"CREATE TEMP TABLE {WHOLE_PRICES} ON COMMIT DROP AS {checks.fast_prices(plan)}{empty}"


# Analyzed, so that the insert hashes the few prices, not the million rows.
ANALYZE_WHOLE_PRICES = f"ANALYZE {WHOLE_PRICES}"


def _priced(plan: Plan) -> bool:
    return "unit_price" in plan.has


def _rows_pass(plan: Plan) -> str:
    """An aggregate over `typed_order_values` (`s`): whether every row passes its own checks."""
    basket = checks.basket_problem(checks.trimmed("s.order_id"))
    return f"count(*) FILTER (WHERE {checks.fast_row_problem(plan, basket)} IS NOT NULL) = 0"


def _prices_pass(plan: Plan) -> str:
    """Whether no checked price has a problem (true without `unit_price`)."""
    if not _priced(plan):
        return "true"
    return f"NOT EXISTS (SELECT 1 FROM {WHOLE_PRICES} WHERE problem IS NOT NULL)"


def _values_pass(plan: Plan) -> str:
    """Whether no checked date nor price has a problem."""
    dates = f"NOT EXISTS (SELECT 1 FROM {WHOLE_DATES} WHERE problem IS NOT NULL)"
    return f"{dates} AND {_prices_pass(plan)}" if _priced(plan) else dates


@cache
def verdict(plan: Plan) -> str:
    """`rows, units, whole, first, last`: one pass over the staged rows finds whether
    every row passes its own checks and every date (and price) is good, and the span of
    the dates (`checks.date_span`). Run only when every product the rows name is
    stored (the lock's counts) and `may_load_whole(plan)`: then, if whole, every row is
    an insert, and `load_whole` inserts them all."""
    return f"""
SELECT count(*), coalesce(sum(s.quantity), 0), {_rows_pass(plan)} AND {_values_pass(plan)},
    {checks.date_span(plan)}
FROM ({staging.typed_order_values(plan)}) s
"""


# --- the checks split between the upload and its summarizer (`summarizer.RowChecks`) ---


@cache
def row_verdict(plan: Plan) -> str:
    """`rows, units, rows_pass, all_timed, first, last`: `verdict`'s pass over the rows
    without the dates' and prices' part (`values_pass` joins them), and
    `checks.all_timed`."""
    return f"""
SELECT count(*), coalesce(sum(s.quantity), 0), {_rows_pass(plan)}, {checks.all_timed(plan)},
    {checks.date_span(plan)}
FROM ({staging.typed_order_values(plan)}) s
"""


@cache
def prices_pass(plan: Plan) -> str:
    """Whether no price in `WHOLE_PRICES` has a problem (true without `unit_price`)."""
    return f"SELECT {_prices_pass(plan)}"


@cache
def values_pass(plan: Plan) -> str:
    """Whether no date (nor price) in `WHOLE_DATES` (and `WHOLE_PRICES`) has a problem."""
    return f"SELECT {_values_pass(plan)}"


# Their columns, as the other connection receives them.
WHOLE_DATES_COLUMNS = ("raw", "problem", "day")
WHOLE_PRICES_COLUMNS = ("raw", "problem", "value", "cents")
SELECT_WHOLE_DATES = f"SELECT {', '.join(WHOLE_DATES_COLUMNS)} FROM {WHOLE_DATES}"
SELECT_WHOLE_PRICES = f"SELECT {', '.join(WHOLE_PRICES_COLUMNS)} FROM {WHOLE_PRICES}"


def _whole_rows(plan: Plan) -> str:
    prices = f"\nLEFT JOIN {WHOLE_PRICES} p ON p.raw = s.unit_price" if _priced(plan) else ""
    return (
        f"FROM ({staging.typed_order_values(plan)}) s"
        f" LEFT JOIN {WHOLE_DATES} d ON d.raw = s.created_date{prices}"
    )


def _whole_day(plan: Plan) -> str:
    # The dates left out of WHOLE_DATES are date-times read on their rows.
    return checks.fast_day(plan, "d", "s.created_date")


def _whole_price(plan: Plan) -> str:
    return "p.value" if _priced(plan) else "NULL::numeric(12, 2)"


@cache
def load_whole(plan: Plan) -> str:
    """Every row of a file the verdict found whole, inserted as it is: the rows `load`
    would insert, without the judged copy of each that it makes."""
    return f"""
INSERT INTO orders (order_id, product_id, quantity, created_date, unit_price, basket, upload_id)
SELECT s.id, s.product_id::integer, s.quantity::integer, {_whole_day(plan)}, {_whole_price(plan)},
    {checks.trimmed("s.order_id")}, {UPLOAD}
{_whole_rows(plan)}
"""


UPDATE_STORED = f"""
UPDATE orders o
SET product_id = c.product_id, quantity = c.quantity, created_date = c.created_date,
    unit_price = c.unit_price, basket = c.basket, upload_id = {UPLOAD}
FROM {CHECKED} c WHERE c.action = 'update' AND o.order_id = c.order_id
"""

REJECTED = f"SELECT ord, line, problem FROM {CHECKED} WHERE action = 'reject'"


@cache
def sum_new(plan: Plan) -> str:
    """What a new-orders upload on the fast path adds to the sales (and, with `order_id`,
    to the baskets), summed straight from the checked rows: those with no problem and a
    stored product, and of those only the first occurrence of each id unless the ids are
    unique (what `load` inserts when no stored id is in range). Run by the summarizer
    beside `load`, or by the upload after it if the summarizer could not. Parameters:
    those of `checks.rows(plan)`."""
    occurrence = (
        ", row_number() OVER (PARTITION BY j.order_id ORDER BY j.line) AS occurrence"
        if plan.sort_occurrences
        else ", 1 AS occurrence"
    )
    return _summed(
        plan,
        f"""SELECT * FROM (
    SELECT j.created_date, j.product_id, j.quantity, j.unit_price, j.basket{occurrence}
    FROM {checks.rows(plan)} j JOIN products p ON p.product_id = j.product_id
    WHERE j.problem IS NULL
) r WHERE occurrence = 1""",
    )


@cache
def sum_whole(plan: Plan, *, cents: bool = False) -> str:
    """The same for a file of `may_load_whole` whose `verdict` found it whole, its dates
    (and prices) checked in `WHOLE_DATES` (and `WHOLE_PRICES`): every row of a stored
    product is inserted (`load_whole`, when all are stored), with the day and price
    `load_whole` gives it; no row's checks again. Run by the upload after `load_whole`
    unless a summarizer sums aside, or by a summarizer whose own verdict found the file
    whole. `cents`: the prices summed as integer cents, only for a file that
    `money_in_cents` allows it. No parameter."""
    if cents and _priced(plan):
        price, sums = "p.cents AS cents", _CENTS_SUMS
    else:
        price, sums = f"{_whole_price(plan)} AS unit_price", _LISTED_SUMS
    return _summed(
        plan,
        f"""SELECT {_whole_day(plan)} AS created_date, s.product_id::integer AS product_id,
    s.quantity, {price}, {checks.trimmed("s.order_id")} AS basket
{_whole_rows(plan)}
JOIN products pr ON pr.product_id = s.product_id""",
        sums,
    )


@cache
def money_in_cents(plan: Plan) -> str | None:
    """Whether the file's prices may be summed as integer cents (`sum_whole(cents=True)`),
    $1 being its units: the largest price in cents × every unit of the file bounds each
    row's product and each sum, and it fits a bigint. None without `unit_price`. A file
    past it (a price of millions on units of billions) is summed in numeric, as exactly."""
    if not _priced(plan):
        return None
    return f"""SELECT coalesce(max(cents), 0) <= 9223372036854775807 / greatest($1::bigint, 1)
FROM {WHOLE_PRICES} WHERE problem IS NULL"""


def _summed(plan: Plan, rows: str, sums: str = _LISTED_SUMS) -> str:
    """The deltas (and, with `order_id`, the basket deltas) of `rows` (`created_date,
    product_id, quantity, unit_price, basket`, or `cents` for `unit_price` with
    `_CENTS_SUMS` as `sums`). In (product, day) order: the windows of
    the fold (the cells', the running units') then find their rows sorted, which saves
    them more than the order costs here. With baskets the rows are made once for both
    sums (checking them, date-times above all, costs more than keeping them)."""
    baskets = "order_id" in plan.has
    sums = rollups.add_deltas(
        f"""SELECT created_date, product_id, count(*), sum(quantity), {sums}
FROM {"new_rows" if baskets else f"({rows})"} v
GROUP BY product_id, created_date
ORDER BY product_id, created_date"""
    )
    if not baskets:
        return sums
    basket_sums = rollups.add_basket_deltas(
        """SELECT basket, created_date, count(*) FROM new_rows
    WHERE basket IS NOT NULL GROUP BY basket, created_date"""
    )
    return f"""WITH new_rows AS MATERIALIZED ({rows}),
baskets AS ({basket_sums})
{sums}"""
