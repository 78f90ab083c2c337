"""Money as exact 2-place decimal text."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def money(value: Decimal | None) -> str | None:
    """Exact 2-place decimal string, rounded half away from zero: `"222.95"`."""
    if value is None:
        return None
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))
