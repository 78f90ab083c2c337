"""Products, with the assessment's table and column names (SPEC section 5)."""

from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, set_on_insert

MAX_INT4 = 2**31 - 1
MAX_CODE = 64  # characters of a text id (issue 27: SKU codes, hex digests, UUIDs)
MAX_NAME = 200
MAX_CATEGORY = 100
# numeric(12, 2): ten integer digits, so every accepted price is below 10^10.
PRICE_PRECISION, PRICE_SCALE = 12, 2


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (
        # A text id (`code`) has a negative surrogate key; an integer id is its own key.
        sa.CheckConstraint(
            f"CASE WHEN code IS NULL THEN product_id BETWEEN 1 AND {MAX_INT4}"
            " ELSE product_id < 0 END",
            name="product_id_range",
        ),
        sa.CheckConstraint("btrim(name) <> ''", name="name_not_blank"),
        sa.CheckConstraint("btrim(category) <> ''", name="category_not_blank"),
        sa.CheckConstraint("price >= 0", name="price_not_negative"),
    )

    product_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    # The id as the file wrote it, when it is not an integer (uploads with ?ids=text).
    code: Mapped[str | None] = mapped_column(sa.String(MAX_CODE), unique=True)
    name: Mapped[str] = mapped_column(sa.String(MAX_NAME))
    category: Mapped[str] = mapped_column(sa.String(MAX_CATEGORY), index=True)
    # The latest price set (the one of the latest `valid_from` in `product_prices`, which
    # may lie in the future); orders are valued at the price in effect on their date.
    price: Mapped[Decimal] = mapped_column(sa.Numeric(PRICE_PRECISION, PRICE_SCALE))
    updated_at: Mapped[datetime] = set_on_insert()
    # The upload that last inserted or changed the row (change tracking); `unchanged`
    # rows keep theirs.
    upload_id: Mapped[int | None] = mapped_column(sa.BigInteger, index=True)


class ProductPrice(Base):
    """Every price a product has had (issue 27, item 1): in effect from `valid_from` until
    the next one's (`valid_to`, exclusive; infinity for the latest). The first price holds
    for every earlier date as well: `applies_from` is -infinity for it and `valid_from`
    for the others, so the price of any date is the one row whose
    `[applies_from, valid_to)` holds it (a product always has exactly one). Kept by the
    products uploads (app/uploads/sql/products.py)."""

    __tablename__ = "product_prices"
    __table_args__ = (
        sa.PrimaryKeyConstraint("product_id", "valid_from"),
        sa.CheckConstraint("price >= 0", name="price_not_negative"),
        sa.CheckConstraint("valid_from < valid_to", name="valid_range"),
        sa.CheckConstraint("applies_from <= valid_from", name="applies_before"),
    )

    product_id: Mapped[int] = mapped_column(sa.Integer)
    valid_from: Mapped[date]
    valid_to: Mapped[date]
    applies_from: Mapped[date]
    price: Mapped[Decimal] = mapped_column(sa.Numeric(PRICE_PRECISION, PRICE_SCALE))
    upload_id: Mapped[int | None] = mapped_column(sa.BigInteger)
