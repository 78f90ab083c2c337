"""Products, with the assessment's table and column names (SPEC section 5)."""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, CheckConstraint, Column, DateTime, Integer, Numeric, String, func
from sqlmodel import Field, SQLModel

MAX_INT4 = 2**31 - 1
MAX_NAME = 200
MAX_CATEGORY = 100
# numeric(12, 2): ten integer digits, so every accepted price is below 10^10.
PRICE_PRECISION, PRICE_SCALE = 12, 2


class Product(SQLModel, table=True):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint(f"product_id BETWEEN 1 AND {MAX_INT4}", name="product_id_range"),
        CheckConstraint("btrim(name) <> ''", name="name_not_blank"),
        CheckConstraint("btrim(category) <> ''", name="category_not_blank"),
        CheckConstraint("price >= 0", name="price_not_negative"),
    )

    product_id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    name: str = Field(sa_column=Column(String(MAX_NAME), nullable=False))
    category: str = Field(sa_column=Column(String(MAX_CATEGORY), nullable=False, index=True))
    price: Decimal = Field(sa_column=Column(Numeric(PRICE_PRECISION, PRICE_SCALE), nullable=False))
    updated_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now())
    )
    # The upload that last inserted or changed the row (change tracking); `unchanged`
    # rows keep theirs.
    upload_id: int | None = Field(
        default=None, sa_column=Column(BigInteger, nullable=True, index=True)
    )
