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


class FxInfo(FxRate):
    """The `fx` object of every JSON answer with USD figures."""

    mode: FxMode = Field(description="`latest` or `order_date`")
