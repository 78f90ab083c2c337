"""Every row rule of SPEC section 2, in one table.

A field rule says when a field is bad (earlier rules on it having passed) and the
message the row gets. Each is written twice only in the sense of two *forms of one
rule*: over the trimmed text (`text`, what the careful path stages, and the dates of the
fast path) and over the value as COPY typed it (`typed`, integers on the fast path of
orders; None where COPY's own type input already refuses what the rule refuses). The
SQL that checks rows on either path is generated from this table (uploads/sql/checks.py),
and so is the table of reject codes in docs/UPLOADS.md (`reject_code_table`). A row's reason is its
first failing rule, fields in file-column order of the kind's required columns.

The rules that compare a row with others (`unknown_product`, `duplicate_in_file`,
`conflict`) or with the header (`wrong_field_count`) are in the table too, for the docs;
their SQL is in the judging statements (uploads/sql/orders.py, products.py) and checks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from app.catalog.models import MAX_CATEGORY, MAX_CODE, MAX_INT4, MAX_NAME
from app.orders.models import MAX_BASKET
from app.uploads.dialect import DateFormat, Dialect
from app.uploads.models import RejectCode, UploadKind

MAX_INT8 = 2**63 - 1
MAX_PRICE_DIGITS = 10  # integer digits: prices are below 10^10
WHITESPACE = r"E' \t\r\n'"
SHOWN = 40  # characters of a bad value quoted in a message


@dataclass(frozen=True)
class FieldRule:
    """`{v}` in the SQL stands for the field's value; `{shown}` for it quoted in a message."""

    field: str
    code: RejectCode
    text: str  # over the trimmed text (NULL when empty): true when bad
    message: str
    typed: str | None = None  # over the COPY-typed value; None: the type refuses it already


@dataclass(frozen=True)
class RowRule:
    """A rule judged against other rows or the header; documented here, checked in SQL
    by the judging statements."""

    code: RejectCode


def _int(field: str, high: int) -> tuple[FieldRule, ...]:
    return (
        _missing(field),
        FieldRule(
            field,
            RejectCode.INVALID_INTEGER,
            "{v} !~ '^[+-]?[0-9]+$'",
            f"format('{field} %s is not a whole number', {{shown}})",
        ),
        FieldRule(
            field,
            RejectCode.OUT_OF_RANGE,
            # CASE keeps the cast away from absurdly long digit strings.
            "CASE WHEN length({v}) > 30 THEN true"
            f" ELSE {{v}}::numeric NOT BETWEEN 1 AND {high} END",
            f"format('{field} %s is outside 1 to {high}', {{shown}})",
            typed=f"{{v}} NOT BETWEEN 1 AND {high}",
        ),
    )


def _missing(field: str) -> FieldRule:
    return FieldRule(
        field, RejectCode.MISSING_VALUE, "{v} IS NULL", f"'{field} is empty'", typed="{v} IS NULL"
    )


def _text(field: str, limit: int) -> tuple[FieldRule, ...]:
    return (
        _missing(field),
        FieldRule(
            field,
            RejectCode.TOO_LONG,
            f"char_length({{v}}) > {limit}",
            f"format('{field} has %s characters; at most {limit}', char_length({{v}}))",
        ),
    )


_INTEGER_PART = "ltrim(split_part(ltrim({v}, '+-'), '.', 1), '0')"


def _decimal(field: str) -> tuple[FieldRule, ...]:
    return (
        _missing(field),
        FieldRule(
            field,
            RejectCode.INVALID_DECIMAL,
            r"{v} !~ '^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$'",
            f"format('{field} %s is not a decimal number like 12.34', {{shown}})",
        ),
        FieldRule(
            field,
            RejectCode.INVALID_DECIMAL,
            "char_length(split_part({v}, '.', 2)) > 2",
            f"format('{field} %s has more than 2 decimal places', {{shown}})",
        ),
        FieldRule(
            field,
            RejectCode.OUT_OF_RANGE,
            f"CASE WHEN char_length({_INTEGER_PART}) > {MAX_PRICE_DIGITS} THEN true"
            " ELSE {v}::numeric < 0 END",
            f"format('{field} %s is outside 0 to 9999999999.99', {{shown}})",
        ),
    )


# A real calendar date, written YYYY-MM-DD. Checked without pg_input_is_valid (which
# PostgreSQL 15 lacks), by string comparisons and integer arithmetic (a date built and
# formatted for each value cost ~2 µs, which a file of date-times pays per value): CASE
# keeps the year's cast away from what the step before refused.
_MONTH_END = (
    "CASE WHEN substr({v}, 6, 2) IN ('04', '06', '09', '11') THEN '30'"
    " WHEN substr({v}, 6, 2) <> '02' THEN '31'"
    " WHEN substr({v}, 1, 4)::integer % 4 = 0 AND (substr({v}, 1, 4)::integer % 100 <> 0"
    " OR substr({v}, 1, 4)::integer % 400 = 0) THEN '29' ELSE '28' END"
)
_NOT_A_DATE = (
    "CASE WHEN {v} !~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}$' THEN true"
    " WHEN substr({v}, 1, 4) = '0000' OR substr({v}, 6, 2) NOT BETWEEN '01' AND '12' THEN true"
    f" ELSE substr({{v}}, 9, 2) NOT BETWEEN '01' AND {_MONTH_END} END"
)


# `'2024-12-01'` as the original files write dates: one pair of single quotes, and
# spaces inside or outside them, are allowed.
UNQUOTED_DATE = (
    "CASE WHEN char_length({v}) >= 2 AND {v} LIKE '''%'''"
    f" THEN NULLIF(btrim(substr({{v}}, 2, char_length({{v}}) - 2), {WHITESPACE}), '')"
    " ELSE {v} END"
)


# An ISO 8601 date-time (`T` or a space between date and time; seconds and their
# fraction optional; `Z` or an offset optional) whose date and time are real. Year 0001 is
# left out: an offset could move it before year 1. Written as its date part (the first
# 10 characters) and its time part (the rest), so that the fast path can check each
# part once per distinct part (checks.fast_dates) by the same patterns.
_DAY_PART = r"^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}"
# The time part is a head of exactly 6 characters (separator, hour, minute) and a tail, so
# that the fast path can check each once per distinct head and tail (checks._quick_parts).
_TIME_HEAD = r"[Tt ]([01][0-9]|2[0-3]):[0-5][0-9]"
_TIME_TAIL = r"(:[0-5][0-9](\.[0-9]{{1,9}})?)?([Zz]|[+-](0[0-9]|1[0-4])(:?[0-5][0-9])?)?$"
_TIME_PART = _TIME_HEAD + _TIME_TAIL
# SQL over `{v}`: its date part is a real date of year 0002 or later / its time part
# (from the 11th character) is a time with an optional offset.
DAY_PART_OK = (
    f"CASE WHEN {{v}} !~ '{_DAY_PART}' OR substr({{v}}, 1, 4) <= '0001' THEN false"
    f" ELSE substr({{v}}, 6, 2) BETWEEN '01' AND '12'"
    f" AND substr({{v}}, 9, 2) BETWEEN '01' AND {_MONTH_END} END"
)
TIME_PART_OK = f"({{v}} ~ '^{_TIME_PART}')"
TIME_HEAD_OK = f"({{v}} ~ '^{_TIME_HEAD}$')"
TIME_TAIL_OK = f"({{v}} ~ '^{_TIME_TAIL}')"
IS_DATE_TIME = (
    f"(length({{v}}) > 10 AND {TIME_PART_OK.replace('{v}', 'substr({v}, 11)')}"
    f" AND {DAY_PART_OK.replace('{v}', 'left({v}, 10)')})"
)
# Of a time part (a date-time's from its 11th character): `Z`, or an offset's sign.
HAS_OFFSET = "(right({v}, 1) IN ('Z', 'z') OR strpos({v}, '+') > 0 OR strpos({v}, '-') > 0)"


def in_zone(timezone: str) -> str:
    """SQL over `{v}`, a date-time with an offset: its date in `timezone` (a validated
    IANA name: config.Settings.business_timezone), `YYYY-MM-DD`."""
    assert "'" not in timezone
    return f"to_char(({{v}})::timestamptz AT TIME ZONE '{timezone}', 'YYYY-MM-DD')"


def zone_date(timezone: str) -> str:
    """SQL over `{v}`, a date-time with an offset: its `date` in `timezone` (what
    `in_zone` writes, as a date: the fast path's per-row form, `checks.fast_day`)."""
    assert "'" not in timezone
    return f"(({{v}})::timestamptz AT TIME ZONE '{timezone}')::date"


def date_time_in(timezone: str) -> str:
    """SQL over `{v}` giving `YYYY-MM-DD` for a date-time: with an offset, its date in
    `timezone`; without one, a local time there, its own date. Any other text as it is
    (text without a `:` is not looked at further: a date-only file pays one `strpos` per
    value)."""
    return (
        "CASE WHEN strpos({v}, ':') = 0 THEN {v}"
        f" WHEN NOT {IS_DATE_TIME} THEN {{v}}"
        f" WHEN {HAS_OFFSET.replace('{v}', 'substr({v}, 11)')} THEN {in_zone(timezone)}"
        " ELSE left({v}, 10) END"
    )


# A decimal comma (`179,34`) where the dialect allows one: the rules then read a point.
DECIMAL_COMMA = "replace({v}, ',', '.')"


def date_in(fmt: DateFormat) -> str:
    """SQL over `{v}` giving `YYYY-MM-DD` for a date written in `fmt` (day and month of 1
    or 2 digits; with a time in the format, a real time of 1 or 2 digits' hour may follow
    after a space, and is dropped: a local time's date is the one written); any other
    text as it is, for the date rules to judge. Built from the format's own parts (a
    separator of `SEPARATORS`), never from text received."""
    sep = fmt.separator
    pattern = ("\\" + sep if sep == "." else sep).join(
        "[0-9]{{4}}" if part == "Y" else "[0-9]{{1,2}}" for part in fmt.order
    )
    date = "{v}"
    if fmt.time:
        pattern += "( ([01]?[0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?)?"
        date = "split_part({v}, ' ', 1)"
    parts = {part: f"split_part({date}, '{sep}', {i + 1})" for i, part in enumerate(fmt.order)}
    return (
        f"CASE WHEN {{v}} ~ '^{pattern}$' THEN {parts['Y']} || '-' || lpad({parts['m']}, 2, '0')"
        f" || '-' || lpad({parts['d']}, 2, '0') ELSE {{v}} END"
    )


def _date(field: str) -> tuple[FieldRule, ...]:
    return (
        _missing(field),
        FieldRule(
            field,
            RejectCode.INVALID_DATE,
            _NOT_A_DATE,
            f"format('{field} %s is not a calendar date YYYY-MM-DD', {{shown}})",
        ),
    )


@dataclass(frozen=True)
class Rules:
    """A kind's required columns (their order is the order of checking), the optional
    ones a file may carry (checked after them; empty means not given), and its rules."""

    kind: UploadKind
    required: tuple[str, ...]
    fields: tuple[FieldRule, ...]
    optional: tuple[str, ...] = ()
    # Fields that COPY types itself on the fast path (orders only): their `typed` forms.
    typed_on_fast_path: tuple[str, ...] = ()
    # SQL over a field's trimmed text giving the value its rules check (`{v}`).
    normalize: tuple[tuple[str, str], ...] = ()
    # Fields a dialect's decimal comma, or its explicit date format, applies to.
    decimals: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional

    def of(self, field: str) -> tuple[FieldRule, ...]:
        return tuple(rule for rule in self.fields if rule.field == field)

    def checked(self, columns: tuple[str, ...]) -> tuple[FieldRule, ...]:
        """The rules of the fields a file has (`columns`: required and optional)."""
        return tuple(rule for rule in self.fields if rule.field in columns)

    def own_step(self, field: str) -> str:
        """The kind's own normalizing of a field, over `{v}`."""
        return dict(self.normalize).get(field, "{v}")

    @staticmethod
    def date_format_steps(dialect: Dialect) -> list[str]:
        """A date field's steps after the date-time step: the dialect's date format."""
        return [] if dialect.date_format is None else [date_in(dialect.date_format)]

    def normalized(self, field: str, dialect: Dialect, value: str) -> str:
        """SQL over `value` (the field's trimmed text) giving what the field's rules
        check: the kind's own normalizing, then the dialect's."""
        steps = [self.own_step(field)]
        if field in self.decimals and dialect.decimal == ",":
            steps.append(DECIMAL_COMMA)
        if field in self.dates:
            steps.append(date_time_in(dialect.timezone))
            steps += self.date_format_steps(dialect)
        for step in steps:
            value = step.format(v=value if step == steps[0] else f"({value})")
        return value


ORDERS = Rules(
    kind=UploadKind.ORDERS,
    required=("id", "product_id", "quantity", "created_date"),
    fields=(
        *_int("id", MAX_INT8),
        *_int("product_id", MAX_INT4),
        *_int("quantity", MAX_INT4),
        *_date("created_date"),
        *_decimal("unit_price")[1:],
        *_text("order_id", MAX_BASKET)[1:],
    ),
    optional=("unit_price", "order_id"),
    typed_on_fast_path=("id", "product_id", "quantity"),
    normalize=(("created_date", UNQUOTED_DATE),),
    decimals=("unit_price",),
    dates=("created_date",),
)

PRODUCTS = Rules(
    kind=UploadKind.PRODUCTS,
    required=("id", "name", "category", "price"),
    fields=(
        *_int("id", MAX_INT4),
        *_text("name", MAX_NAME),
        *_text("category", MAX_CATEGORY),
        *_decimal("price"),
        *_date("effective_from")[1:],
    ),
    optional=("effective_from",),
    decimals=("price",),
)

RULES = {UploadKind.ORDERS: ORDERS, UploadKind.PRODUCTS: PRODUCTS}


# An id that is its own integer key: written as a canonical whole number (no sign, no
# leading zero) within the column's range. Any other text is a code (`?ids=text`).
def integer_id(high: int) -> str:
    """SQL over `{v}` (trimmed text): true when it is such an integer id."""
    return (
        f"(CASE WHEN {{v}} ~ '^[1-9][0-9]{{{{0,18}}}}$' THEN {{v}}::numeric <= {high}"
        " ELSE false END)"
    )


def _id_or_code(field: str) -> tuple[FieldRule, ...]:
    return (
        _missing(field),
        FieldRule(
            field,
            RejectCode.TOO_LONG,
            f"char_length({{v}}) > {MAX_CODE}",
            f"format('{field} has %s characters; at most {MAX_CODE}', char_length({{v}}))",
        ),
    )


def _text_ids(rules: Rules, ids: tuple[str, ...]) -> Rules:
    """The same rules with the fields `ids` ids that may be text."""
    fields: list[FieldRule] = []
    for field in rules.required + rules.optional:
        if field in ids:
            fields += _id_or_code(field)
        else:
            fields += rules.of(field)
    return replace(rules, fields=tuple(fields), typed_on_fast_path=())


TEXT_ID_RULES = {
    UploadKind.ORDERS: _text_ids(ORDERS, ("id", "product_id")),
    UploadKind.PRODUCTS: _text_ids(PRODUCTS, ("id",)),
}

ROW_RULES = (
    RowRule(RejectCode.UNKNOWN_PRODUCT),
    RowRule(RejectCode.DUPLICATE_IN_FILE),
    RowRule(RejectCode.CONFLICT),
    RowRule(RejectCode.WRONG_FIELD_COUNT),
)

# What each code means, for docs/UPLOADS.md's table (generated: `reject_code_table`).
MEANING = {
    RejectCode.MISSING_VALUE: "a required field is empty after trimming",
    RejectCode.INVALID_INTEGER: (
        "an id, product_id or quantity is not a whole number (`1.0`, `1e3`, `0x1`, `1_000` are not)"
    ),
    RejectCode.INVALID_DECIMAL: (
        "a price (or an order's `unit_price`) is not a plain decimal with `.` (or `,` where"
        " the dialect allows a decimal comma), or has more than 2 decimals"
    ),
    RejectCode.INVALID_DATE: (
        "`created_date` is not a real calendar date `YYYY-MM-DD` (optionally in single"
        " quotes and/or spaces), nor a real ISO 8601 date-time (`YYYY-MM-DDTHH:MM[:SS[.f]]`"
        " or with a space, optionally `Z` or an offset up to ±14:59), nor a date in the"
        " upload's `date_format`; or a product's `effective_from` is not a calendar date"
        " `YYYY-MM-DD`"
    ),
    RejectCode.OUT_OF_RANGE: (
        "product id or quantity outside 1…2³¹−1, order id outside 1…2⁶³−1, price or unit"
        " price negative or ≥ 10¹⁰"
    ),
    RejectCode.TOO_LONG: (
        f"name over {MAX_NAME}, category over {MAX_CATEGORY} or an order's `order_id` (its"
        f" basket) over {MAX_BASKET} characters"
    ),
    RejectCode.UNKNOWN_PRODUCT: "the order's product is not stored",
    RejectCode.DUPLICATE_IN_FILE: "the id already appeared on an earlier line of the same file",
    RejectCode.CONFLICT: (
        "the id is stored with other values and the upload did not say `on_conflict=update`"
    ),
    RejectCode.WRONG_FIELD_COUNT: "the row has more or fewer fields than the header",
}


def reject_codes() -> list[RejectCode]:
    """Every code a row can get, in the order the rules first name them."""
    seen: dict[RejectCode, None] = {}
    for rules in RULES.values():
        for rule in rules.fields:
            seen.setdefault(rule.code)
    for row_rule in ROW_RULES:
        seen.setdefault(row_rule.code)
    return list(seen)


def reject_code_table() -> str:
    """The table of reject codes in docs/UPLOADS.md, from the rules."""
    lines = ["| code | when |", "|---|---|"]
    lines += [f"| `{code.value}` | {MEANING[code]} |" for code in reject_codes()]
    return "\n".join(lines) + "\n"
