"""How answers state the rate they used."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from app.config import FxMode
from app.fx.cache import Rate


def rate_text(rate: Decimal) -> str:
    """A rate as a plain decimal string, without trailing zeros: `"0.184965"`."""
    return format(rate.normalize(), "f")


class FxRate(BaseModel):
    """A BRL→USD rate: how many USD one BRL buys."""

    base: str = Field(examples=["BRL"])
    quote: str = Field(examples=["USD"])
    rate: str = Field(examples=["0.184965"], description="Exact decimal, as a string")
    source: str = Field(examples=["freecurrencyapi"], description="`freecurrencyapi` or `ecb`")
    as_of: date = Field(description="The day the rate was published for")
    fetched_at: datetime = Field(description="When Orderlens got it from the source")
    stale: bool = Field(
        description="True when the source could not be reached and the last known rate is used"
    )

    @classmethod
    def of(cls, rate: Rate) -> FxRate:
        return cls(
            base=rate.base,
            quote=rate.quote,
            rate=rate_text(rate.rate),
            source=rate.source,
            as_of=rate.as_of,
            fetched_at=rate.fetched_at,
            stale=rate.stale,
        )


class FxInfo(BaseModel):
    """The `fx` object of every JSON answer with USD figures: the rate it used. In
    `order_date` mode each order uses its own day's rate, so `rate` and `as_of` are null
    and the span of the days' rates is given instead."""

    base: str = Field(examples=["BRL"])
    quote: str = Field(examples=["USD"])
    rate: str | None = Field(examples=["0.184965"])
    mode: FxMode = Field(description="`latest` or `order_date`")
    source: str = Field(examples=["ecb"])
    as_of: date | None
    fetched_at: datetime | None
    stale: bool
    days: int | None = Field(default=None, description="order_date: how many days' rates")
    first_as_of: date | None = None
    last_as_of: date | None = None


def fx_headers(info: FxInfo | None) -> dict[str, str]:
    """The rate of a CSV answer, in its headers (none when it has no USD figure)."""
    if info is None:
        return {}
    if info.rate is not None:
        rate, as_of = info.rate, str(info.as_of)
    else:
        rate, as_of = "order_date", f"{info.first_as_of}..{info.last_as_of}"
    return {
        "X-FX-Rate": rate,
        "X-FX-Source": info.source,
        "X-FX-As-Of": as_of,
        "X-FX-Mode": info.mode.value,
        "X-FX-Stale": str(info.stale).lower(),
    }
