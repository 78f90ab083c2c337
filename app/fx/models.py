"""Stored FX rates: the persistent layer of the rate cache (SPEC section 4)."""

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Numeric,
    PrimaryKeyConstraint,
    String,
    text,
)
from sqlmodel import Field, SQLModel


class RateKind(StrEnum):
    LATEST = "latest"  # fresh for FX_CACHE_TTL_SECONDS after fetched_at
    HISTORICAL = "historical"  # the published rate of a past day: never changes


class FxRate(SQLModel, table=True):
    __tablename__ = "fx_rates"
    __table_args__ = (
        PrimaryKeyConstraint("source", "base", "quote", "kind", "rate_date"),
        CheckConstraint("rate > 0", name="rate_positive"),
        CheckConstraint("kind IN ('latest', 'historical')", name="kind_known"),
        CheckConstraint("base ~ '^[A-Z]{3}$' AND quote ~ '^[A-Z]{3}$'", name="currency_codes"),
        CheckConstraint("as_of <= rate_date", name="as_of_not_after"),
    )

    source: str = Field(sa_column=Column(String(32), nullable=False))
    base: str = Field(sa_column=Column(String(3), nullable=False))
    quote: str = Field(sa_column=Column(String(3), nullable=False))
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    # Historical: the day asked about; latest: the day it was fetched.
    rate_date: date = Field(sa_column=Column(Date, nullable=False))
    # The day the rate was published for: rate_date, or the latest earlier published day.
    as_of: date = Field(sa_column=Column(Date, nullable=False))
    rate: Decimal = Field(sa_column=Column(Numeric(24, 12), nullable=False))
    fetched_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    # The transaction that last wrote the row, for the fx_rates feed's cursor (rates are
    # written outside the uploads' merge lock, so their order is the transactions').
    changed_xid: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger, nullable=False, server_default=text("(pg_current_xact_id()::text::bigint)")
        ),
    )
