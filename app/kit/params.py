"""Query parameters that several read endpoints share: the period and the FX mode."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import Depends, Query
from pydantic import BeforeValidator

from app.config import FxMode
from app.errors import AppError
from app.kit.deps import SettingsDep

EARLIEST = date(1, 1, 1)
LATEST = date(9999, 12, 31)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date(value: object) -> object:
    # Left to itself pydantic also reads `2024` or `0` as a Unix timestamp (1970-01-01)
    # and `2024-12-01T00:00Z` as a day: a wrong answer rather than a 422.
    if isinstance(value, str) and not _ISO_DATE.fullmatch(value):
        raise ValueError("Input should be a date written YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date)]
"""A date parameter written exactly `YYYY-MM-DD` (and a real calendar day)."""


class InvalidPeriod(AppError):
    status_code = 422
    code = "invalid_period"


@dataclass(frozen=True)
class Period:
    """Inclusive dates; None means unbounded on that side."""

    start: date | None = None
    end: date | None = None

    @property
    def unbounded(self) -> bool:
        return self.start is None and self.end is None

    def params(self) -> dict[str, date]:
        return {"start": self.start or EARLIEST, "end": self.end or LATEST}


def period(
    start: Annotated[IsoDate | None, Query(description="First day, inclusive (YYYY-MM-DD)")] = None,
    end: Annotated[IsoDate | None, Query(description="Last day, inclusive (YYYY-MM-DD)")] = None,
) -> Period:
    if start is not None and end is not None and start > end:
        raise InvalidPeriod(
            f"start {start} is after end {end}.",
            details={"start": start.isoformat(), "end": end.isoformat()},
        )
    return Period(start, end)


PeriodDep = Annotated[Period, Depends(period)]


def fx_mode(
    settings: SettingsDep,
    fx_mode: Annotated[
        FxMode | None,
        Query(description="`latest` (one current rate) or `order_date`; default FX_MODE"),
    ] = None,
) -> FxMode:
    return fx_mode or settings.fx_mode


FxModeDep = Annotated[FxMode, Depends(fx_mode)]


@dataclass(frozen=True)
class View:
    """What a read looks at: the period, and how its USD figures are converted."""

    period: Period
    mode: FxMode


def view(period: PeriodDep, mode: FxModeDep) -> View:
    return View(period, mode)


ViewDep = Annotated[View, Depends(view)]
