"""Calendar features of the global model: weekend and Brazilian holidays, offline."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Any

import numpy as np

# `holidays` files these two as optional; they close shops as much as the national ones.
OPTIONAL_KEPT = ("Carnival", "Corpus Christi")


@lru_cache(maxsize=64)
def brazil_holidays(year: int) -> frozenset[date]:
    """Brazil's national holidays of `year`, plus Carnival and Corpus Christi."""
    import holidays

    public = holidays.country_holidays("BR", years=year)
    optional = holidays.country_holidays("BR", years=year, categories=("optional",))
    kept = {d for d, name in optional.items() if any(k in name for k in OPTIONAL_KEPT)}
    return frozenset(set(public) | kept)


def is_holiday(dates: Any) -> Any:
    """1 where a day of `dates` (a pandas DatetimeIndex) is a holiday, else 0."""
    days = np.asarray(dates, dtype="datetime64[D]")
    if days.size == 0:
        return np.zeros(0, dtype=np.int8)
    first, last = days.min().astype(object).year, days.max().astype(object).year
    off = sorted(d for y in range(first, last + 1) for d in brazil_holidays(y))
    return np.isin(days, np.array(off, dtype="datetime64[D]")).astype(np.int8)


def is_weekend(dates: Any) -> Any:
    """1 on Saturdays and Sundays."""
    return (np.asarray(dates.dayofweek) >= 5).astype(np.int8)
