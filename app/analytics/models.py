"""Rollups that the read endpoints serve from, kept exact inside each upload's transaction.

An order is worth its quantity × the unit price it was charged (orders' `unit_price`) or,
without one, its product's price in effect on its date (`product_prices`; issue 27).
Revenue is rolled up per product and day with the units valued at the list price
(`list_quantity`), so that a price change re-values exactly the cells it covers, from
`product_daily_sales`, through the same fold as new orders.

Rollups are derived data with no foreign keys of their own: products are never deleted,
and a key check per rollup row would cost as much as the rollup saves.
"""

from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class DailySales(Base):
    """Per calendar day with orders: order count, units and BRL revenue."""

    __tablename__ = "daily_sales"
    __table_args__ = (
        sa.CheckConstraint("orders > 0 AND quantity > 0 AND revenue_brl >= 0", name="positive"),
    )

    created_date: Mapped[date] = mapped_column(primary_key=True)
    orders: Mapped[int] = mapped_column(sa.BigInteger)
    quantity: Mapped[int] = mapped_column(sa.BigInteger)
    revenue_brl: Mapped[Decimal] = mapped_column(sa.Numeric)


class ProductDailySales(Base):
    """Per product and day with sales: order count and units, and the units it grew by,
    against the calendar day before (0 when it had no sales) and against the product's
    previous sale day. Kept at ingest, so that top growth is one scan of this table with
    no joins or windows (an index on the growths would cost more at ingest than it saves:
    two random-order index inserts per cell tripled the rollup time of a big upload)."""

    __tablename__ = "product_daily_sales"
    __table_args__ = (
        sa.PrimaryKeyConstraint("product_id", "created_date"),
        sa.CheckConstraint("orders > 0 AND quantity > 0", name="positive"),
        sa.CheckConstraint("prev_sale_date < created_date", name="previous_sale_before"),
        sa.CheckConstraint("cum_quantity >= quantity", name="running_total_covers_day"),
        sa.CheckConstraint("list_quantity BETWEEN 0 AND quantity", name="list_units_within"),
    )

    product_id: Mapped[int] = mapped_column(sa.Integer)
    created_date: Mapped[date]
    orders: Mapped[int] = mapped_column(sa.BigInteger)
    quantity: Mapped[int] = mapped_column(sa.BigInteger)
    # Units of the calendar day before (0 without sales that day).
    prev_quantity: Mapped[int] = mapped_column(sa.BigInteger, server_default=sa.text("0"))
    # The product's previous sale day and its units (NULL for its first).
    prev_sale_date: Mapped[date | None]
    prev_sale_quantity: Mapped[int | None] = mapped_column(sa.BigInteger)
    # The product's units from its first sale day up to and including this one: the
    # units of any period are the difference of two cells (the last on or before its
    # end, the last before its start), two index probes per product however long it is.
    cum_quantity: Mapped[int] = mapped_column(sa.BigInteger)
    # Of `quantity`, the units of orders without a unit price of their own (valued at the
    # product's price in effect that day); and the cell's revenue, exact.
    list_quantity: Mapped[int] = mapped_column(sa.BigInteger)
    revenue_brl: Mapped[Decimal] = mapped_column(sa.Numeric)
    calendar_growth: Mapped[int | None] = mapped_column(
        sa.BigInteger, sa.Computed("quantity - prev_quantity", persisted=True)
    )
    sale_growth: Mapped[int | None] = mapped_column(
        sa.BigInteger, sa.Computed("quantity - prev_sale_quantity", persisted=True)
    )


class GrowthLeader(Base):
    """Per day and basis (`calendar`, `previous_sale`), the cells with the highest growth
    that day, ranked 1 … LEADERS_PER_DAY (growth descending, then product_id): the top
    growths of any period are among its days' leaders (for a limit up to that many), so
    top growth reads a few rows per day instead of sorting every product-day. Kept at
    ingest by app/analytics/rollups.py from the cells an upload touches."""

    __tablename__ = "growth_leaders"
    __table_args__ = (
        sa.PrimaryKeyConstraint("basis", "created_date", "rank"),
        sa.CheckConstraint("basis IN ('calendar', 'previous_sale')", name="basis_known"),
        sa.CheckConstraint("rank >= 1", name="rank_positive"),
        sa.Index(
            "ix_growth_leaders_order", "basis", sa.text("growth DESC"), "created_date", "product_id"
        ),
    )

    basis: Mapped[str] = mapped_column(sa.String(16))
    created_date: Mapped[date]
    rank: Mapped[int] = mapped_column(sa.SmallInteger)
    product_id: Mapped[int] = mapped_column(sa.Integer)
    quantity: Mapped[int] = mapped_column(sa.BigInteger)
    previous_date: Mapped[date]
    previous_quantity: Mapped[int] = mapped_column(sa.BigInteger)
    growth: Mapped[int] = mapped_column(sa.BigInteger)


class ProductSales(Base):
    """Per product over all time: what the unfiltered KPIs read."""

    __tablename__ = "product_sales"
    __table_args__ = (sa.CheckConstraint("orders > 0 AND quantity > 0", name="positive"),)

    product_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    orders: Mapped[int] = mapped_column(sa.BigInteger)
    quantity: Mapped[int] = mapped_column(sa.BigInteger)
    revenue_brl: Mapped[Decimal] = mapped_column(sa.Numeric)


class UnitsThroughMonth(Base):
    """Per month with orders (its first day): every product's units from its first sale
    through the month's last day, as two aligned arrays (products without any left out).

    With `UnitsMonthToDate`, what makes a period's units per product a constant amount of
    work: the units up to a day are the row of the last month before the day's month plus
    that month's row of the day (or of its last order day before), so a period is four
    rows, whatever its length; and an upload rewrites only the rows of the months it
    touches and the month totals from its first month on, not every day after its first.
    The arrays are stored uncompressed (migration 0009: STORAGE EXTERNAL): read whole every
    time, and rewritten whole, they cost more to compress than they would save."""

    __tablename__ = "units_through_month"
    __table_args__ = (
        sa.CheckConstraint("extract(day FROM month) = 1", name="first_of_month"),
        sa.CheckConstraint(
            "cardinality(product_ids) = cardinality(quantities)", name="arrays_aligned"
        ),
    )

    month: Mapped[date] = mapped_column(primary_key=True)
    product_ids: Mapped[list[int]] = mapped_column(sa.ARRAY(sa.Integer))
    quantities: Mapped[list[int]] = mapped_column(sa.ARRAY(sa.BigInteger))


class UnitsMonthToDate(Base):
    """Per order day: every product's units from the first day of the day's month through
    the day, as two aligned arrays (products without any that month left out). See
    `UnitsThroughMonth`."""

    __tablename__ = "units_month_to_date"
    __table_args__ = (
        sa.CheckConstraint(
            "cardinality(product_ids) = cardinality(quantities)", name="arrays_aligned"
        ),
    )

    created_date: Mapped[date] = mapped_column(primary_key=True)
    product_ids: Mapped[list[int]] = mapped_column(sa.ARRAY(sa.Integer))
    quantities: Mapped[list[int]] = mapped_column(sa.ARRAY(sa.BigInteger))


# Every table kept from the orders at ingest: emptied with them, or they would disagree.
ROLLUP_TABLES = (
    *(
        model.__tablename__
        for model in (
            DailySales,
            ProductDailySales,
            GrowthLeader,
            ProductSales,
            UnitsThroughMonth,
            UnitsMonthToDate,
        )
    ),
    "basket_days",  # app.orders.models.BasketDay
)
