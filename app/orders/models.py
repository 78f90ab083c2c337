"""Orders, with the assessment's table and column names (SPEC section 5).

Kept to the input columns (the four of the assessment, and the optional `unit_price` and
basket of issue 27, NULL and free when absent) and the upload that wrote them: every
extra byte and constraint here is paid on each of tens of millions of rows at ingest.
"""

from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.catalog.models import MAX_CODE, MAX_INT4, PRICE_PRECISION, PRICE_SCALE
from app.db.base import Base

MAX_BASKET = 64  # characters of an order's id (a basket): UUIDs, hex digests, invoice numbers


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        sa.CheckConstraint(
            "CASE WHEN code IS NULL THEN order_id >= 1 ELSE order_id < 0 END",
            name="order_id_positive",
        ),
        sa.CheckConstraint(f"quantity BETWEEN 1 AND {MAX_INT4}", name="quantity_range"),
        sa.CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
        # Unique among the rows that have one: rows without a code (integer ids, nearly
        # every row of most shops) add no entry, which a million-row insert would pay.
        sa.Index(
            "uq_orders_code", "code", unique=True, postgresql_where=sa.text("code IS NOT NULL")
        ),
        # BRIN: rows of one upload lie together, and it costs next to nothing at ingest.
        sa.Index(
            "ix_orders_upload_id",
            "upload_id",
            postgresql_using="brin",
            postgresql_with={"autosummarize": "on"},
        ),
    )

    order_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    # The line's id as the file wrote it when it is not an integer, or the key the service
    # made for a line without one (uploads with ?ids=text); its `order_id` is then a
    # negative surrogate.
    code: Mapped[str | None] = mapped_column(sa.String(MAX_CODE))
    product_id: Mapped[int] = mapped_column(
        sa.Integer, sa.ForeignKey("products.product_id"), index=True
    )
    quantity: Mapped[int] = mapped_column(sa.Integer)
    created_date: Mapped[date] = mapped_column(index=True)
    # The upload that last wrote the row (change tracking, the warehouse feeds); integer
    # fills padding the tuple already has. Rows loaded before tracking have none.
    upload_id: Mapped[int | None] = mapped_column(sa.Integer)
    # The unit price charged, when the file said (orders' `unit_price`); NULL: the order is
    # valued at its product's price in effect on `created_date` (`product_prices`).
    unit_price: Mapped[Decimal | None] = mapped_column(sa.Numeric(PRICE_PRECISION, PRICE_SCALE))
    # The order this row is a line of (the file's `order_id`, as written); NULL: the line
    # is an order of its own. Orders are counted once per basket and day (`BasketDay`).
    basket: Mapped[str | None] = mapped_column(sa.String(MAX_BASKET))


class BasketDay(Base):
    """Per basket (an order of several lines) and day: its lines stored. A day's orders
    (`daily_sales.orders`) are its baskets plus its lines without one; kept at ingest
    with the other rollups, so that a basket whose lines arrive in several uploads, or
    twice, still counts once."""

    __tablename__ = "basket_days"
    __table_args__ = (
        sa.PrimaryKeyConstraint("basket", "created_date"),
        sa.CheckConstraint("lines > 0", name="lines_positive"),
    )

    # Compared by bytes: ids, never ordered for a reader, and a big upload adds hundreds
    # of thousands of keys, which `strcoll` would compare (migration 0023).
    basket: Mapped[str] = mapped_column(sa.String(MAX_BASKET, collation="C"))
    created_date: Mapped[date]
    lines: Mapped[int] = mapped_column(sa.BigInteger)
