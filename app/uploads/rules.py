"""The input rules of SPEC section 2, as SQL over the staging table.

Each kind lists its fields in file order of checking; a row's first problem is its
reason. The SQL text is built here, once, from these constants: never from input.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.catalog.models import MAX_CATEGORY, MAX_INT4, MAX_NAME
from app.uploads.models import RejectCode, UploadKind

MAX_INT8 = 2**63 - 1
MAX_PRICE_DIGITS = 10  # integer digits: prices are below 10^10
WHITESPACE = r"E' \t\r\n'"
SHOWN = 40  # characters of a bad value quoted in a message


@dataclass(frozen=True)
class Check:
    condition: str  # SQL, true when the field is bad; earlier checks have passed
    code: RejectCode
    message: str  # SQL expression giving the message


def _shown(col: str) -> str:
    return f"quote_literal(left({col}, {SHOWN}))"


def missing(col: str) -> Check:
    return Check(f"{col} IS NULL", RejectCode.MISSING_VALUE, f"'{col} is empty'")


def integer(col: str, low: int, high: int) -> list[Check]:
    return [
        missing(col),
        Check(
            f"{col} !~ '^[+-]?[0-9]+$'",
            RejectCode.INVALID_INTEGER,
            f"format('{col} %s is not a whole number', {_shown(col)})",
        ),
        Check(
            # CASE keeps the cast away from absurdly long digit strings.
            f"CASE WHEN length({col}) > 30 THEN true"
            f" ELSE {col}::numeric NOT BETWEEN {low} AND {high} END",
            RejectCode.OUT_OF_RANGE,
            f"format('{col} %s is outside {low} to {high}', {_shown(col)})",
        ),
    ]


def text(col: str, limit: int) -> list[Check]:
    return [
        missing(col),
        Check(
            f"char_length({col}) > {limit}",
            RejectCode.TOO_LONG,
            f"format('{col} has %s characters; at most {limit}', char_length({col}))",
        ),
    ]


def decimal(col: str) -> list[Check]:
    integer_part = f"ltrim(split_part(ltrim({col}, '+-'), '.', 1), '0')"
    return [
        missing(col),
        Check(
            rf"{col} !~ '^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$'",
            RejectCode.INVALID_DECIMAL,
            f"format('{col} %s is not a decimal number like 12.34', {_shown(col)})",
        ),
        Check(
            f"char_length(split_part({col}, '.', 2)) > 2",
            RejectCode.INVALID_DECIMAL,
            f"format('{col} %s has more than 2 decimal places', {_shown(col)})",
        ),
        Check(
            f"CASE WHEN char_length({integer_part}) > {MAX_PRICE_DIGITS} THEN true"
            f" ELSE {col}::numeric < 0 END",
            RejectCode.OUT_OF_RANGE,
            f"format('{col} %s is outside 0 to 9999999999.99', {_shown(col)})",
        ),
    ]


def calendar_date(col: str) -> list[Check]:
    return [
        missing(col),
        Check(
            f"{col} !~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}$'"
            f" OR NOT pg_input_is_valid({col}, 'date')",
            RejectCode.INVALID_DATE,
            f"format('{col} %s is not a calendar date YYYY-MM-DD', {_shown(col)})",
        ),
    ]


def first_problem(checks: tuple[Check, ...] | list[Check], *, before: str = "") -> str:
    """CASE giving `ARRAY[code, message]` for the first failing check, or NULL."""
    branches = [f"WHEN {c.condition} THEN ARRAY['{c.code.value}', {c.message}]" for c in checks]
    return f"CASE {before} " + " ".join(branches) + " END"


@dataclass(frozen=True)
class Rules:
    kind: UploadKind
    required: tuple[str, ...]
    checks: tuple[Check, ...]

    def problem_sql(self, width_param: str) -> str:
        """CASE giving `ARRAY[code, message]` for a row's first problem, or NULL."""
        wrong_count = (
            "WHEN bad_count IS NOT NULL THEN ARRAY['wrong_field_count',"
            f" format('expected %s fields, found %s', {width_param}, bad_count)]"
        )
        return first_problem(self.checks, before=wrong_count)


ORDER_DATE_CHECKS = tuple(calendar_date("created_date"))

ORDERS = Rules(
    kind=UploadKind.ORDERS,
    required=("id", "product_id", "quantity", "created_date"),
    checks=(
        *integer("id", 1, MAX_INT8),
        *integer("product_id", 1, MAX_INT4),
        *integer("quantity", 1, MAX_INT4),
        *ORDER_DATE_CHECKS,
    ),
)

PRODUCTS = Rules(
    kind=UploadKind.PRODUCTS,
    required=("id", "name", "category", "price"),
    checks=(
        *integer("id", 1, MAX_INT4),
        *text("name", MAX_NAME),
        *text("category", MAX_CATEGORY),
        *decimal("price"),
    ),
)

RULES = {UploadKind.ORDERS: ORDERS, UploadKind.PRODUCTS: PRODUCTS}
