"""Orders, with the assessment's table and column names (SPEC section 5).

Kept to the four input columns: every extra byte and constraint here is paid on each of
tens of millions of rows at ingest.
"""

from datetime import date

from sqlalchemy import BigInteger, CheckConstraint, Column, Date, ForeignKey, Integer
from sqlmodel import Field, SQLModel

from app.catalog.models import MAX_INT4


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("order_id >= 1", name="order_id_positive"),
        CheckConstraint(f"quantity BETWEEN 1 AND {MAX_INT4}", name="quantity_range"),
    )

    order_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    product_id: int = Field(
        sa_column=Column(Integer, ForeignKey("products.product_id"), nullable=False, index=True)
    )
    quantity: int = Field(sa_column=Column(Integer, nullable=False))
    created_date: date = Field(sa_column=Column(Date, nullable=False, index=True))
