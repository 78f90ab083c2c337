"""Orders, with the assessment's table and column names (SPEC section 5).

Kept to the four input columns and the upload that wrote them: every extra byte
 and constraint here is paid on each of
tens of millions of rows at ingest.
"""

from datetime import date
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
)
from sqlmodel import Field, SQLModel

from app.catalog.models import MAX_INT4, PRICE_PRECISION, PRICE_SCALE


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("order_id >= 1", name="order_id_positive"),
        CheckConstraint(f"quantity BETWEEN 1 AND {MAX_INT4}", name="quantity_range"),
        CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
        # BRIN: rows of one upload lie together, and it costs next to nothing at ingest.
        Index(
            "ix_orders_upload_id",
            "upload_id",
            postgresql_using="brin",
            postgresql_with={"autosummarize": "on"},
        ),
    )

    order_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    product_id: int = Field(
        sa_column=Column(Integer, ForeignKey("products.product_id"), nullable=False, index=True)
    )
    quantity: int = Field(sa_column=Column(Integer, nullable=False))
    created_date: date = Field(sa_column=Column(Date, nullable=False, index=True))
    # The upload that last wrote the row (change tracking, the warehouse feeds); integer
    # fills padding the tuple already has. Rows loaded before tracking have none.
    upload_id: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    # The unit price charged, when the file said (orders' `unit_price`); NULL: the order is
    # valued at its product's price in effect on `created_date` (`product_prices`).
    unit_price: Decimal | None = Field(
        default=None,
        sa_column=Column(Numeric(PRICE_PRECISION, PRICE_SCALE), nullable=True),
    )
