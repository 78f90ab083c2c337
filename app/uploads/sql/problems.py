"""The SQL of a row's problems, shared by the checks and the judging: a rule's branch
of a CASE (over the text or the typed value), the first failing rule, and the verdict of
a valid row that meets a stored one with other values (`conflict`). A problem is
`ARRAY[code, message]`; the rules are uploads/rules.py's.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.uploads.plan import Plan
from app.uploads.rules import SHOWN, FieldRule


def branch(rule: FieldRule, column: str, *, typed: bool) -> str | None:
    """`WHEN bad THEN ARRAY[code, message]` for one rule over `column`, in the text or
    the typed form (None where the typed form has nothing left to check)."""
    if typed:
        if rule.typed is None:
            return None
        condition = rule.typed.format(v=column)
        shown = f"quote_literal({column}::text)"
    else:
        condition = rule.text.format(v=column)
        shown = f"quote_literal(left({column}, {SHOWN}))"
    message = rule.message.format(v=column, shown=shown)
    return f"WHEN {condition} THEN ARRAY['{rule.code.value}', {message}]"


def branches(rules: Iterable[FieldRule], alias: str = "", *, typed: bool = False) -> list[str]:
    found = (branch(r, f"{alias}{r.field}", typed=typed) for r in rules)
    return [b for b in found if b is not None]


def first_problem(rules: Iterable[FieldRule], *, before: str = "") -> str:
    """CASE giving `ARRAY[code, message]` for the first failing rule, or NULL."""
    return f"CASE {before} " + " ".join(branches(rules)) + " END"


def conflict(plan: Plan, stored: str, values: str) -> str:
    """The judging's last branch, for a valid row that meets a stored one with other
    values: an update (`on_conflict=update`), or a `conflict` that says what is stored
    (`stored`: a format() pattern; `values`: its arguments)."""
    if plan.update:
        return "ELSE NULL"
    return f"""ELSE ARRAY['conflict', format(
                '{stored};'
                ' upload with on_conflict=update to replace it',
                {values})]"""
