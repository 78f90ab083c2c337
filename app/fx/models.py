"""Stored FX rates: the persistent layer of the rate cache (SPEC section 4)."""

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class RateKind(StrEnum):
    LATEST = "latest"  # fresh for FX_CACHE_TTL_SECONDS after fetched_at
    HISTORICAL = "historical"  # the published rate of a past day: never changes


class FxRate(Base):
    __tablename__ = "fx_rates"
    __table_args__ = (
        sa.PrimaryKeyConstraint("source", "base", "quote", "kind", "rate_date"),
        sa.CheckConstraint("rate > 0", name="rate_positive"),
        sa.CheckConstraint("kind IN ('latest', 'historical')", name="kind_known"),
        sa.CheckConstraint("base ~ '^[A-Z]{3}$' AND quote ~ '^[A-Z]{3}$'", name="currency_codes"),
        sa.CheckConstraint("as_of <= rate_date", name="as_of_not_after"),
    )

    source: Mapped[str] = mapped_column(sa.String(32))
    base: Mapped[str] = mapped_column(sa.String(3))
    quote: Mapped[str] = mapped_column(sa.String(3))
    kind: Mapped[str] = mapped_column(sa.String(16))
    # Historical: the day asked about; latest: the day it was fetched.
    rate_date: Mapped[date]
    # The day the rate was published for: rate_date, or the latest earlier published day.
    as_of: Mapped[date]
    rate: Mapped[Decimal] = mapped_column(sa.Numeric(24, 12))
    fetched_at: Mapped[datetime]
    # The transaction that last wrote the row, for the fx_rates feed's cursor (rates are
    # written outside the uploads' merge lock, so their order is the transactions').
    changed_xid: Mapped[int] = mapped_column(
        sa.BigInteger, server_default=sa.text("(pg_current_xact_id()::text::bigint)")
    )
