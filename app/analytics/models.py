"""Rollups that the read endpoints serve from, kept exact inside each upload's transaction.

Revenue is quantity × the product's *current* price (SPEC section 2), so only quantities
and counts are rolled up per product; `daily_sales.revenue_brl` is adjusted whenever a
price changes, from `product_daily_sales`.

Rollups are derived data with no foreign keys of their own: products are never deleted,
and a key check per rollup row would cost as much as the rollup saves.
"""

from datetime import date
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    Integer,
    Numeric,
)
from sqlmodel import Field, SQLModel


class DailySales(SQLModel, table=True):
    """Per calendar day with orders: order count, units and BRL revenue."""

    __tablename__ = "daily_sales"
    __table_args__ = (
        CheckConstraint("orders > 0 AND quantity > 0 AND revenue_brl >= 0", name="positive"),
    )

    created_date: date = Field(sa_column=Column(Date, primary_key=True))
    orders: int = Field(sa_column=Column(BigInteger, nullable=False))
    quantity: int = Field(sa_column=Column(BigInteger, nullable=False))
    revenue_brl: Decimal = Field(sa_column=Column(Numeric, nullable=False))


class ProductDailySales(SQLModel, table=True):
    """Per day and product: order count and units."""

    __tablename__ = "product_daily_sales"
    __table_args__ = (CheckConstraint("orders > 0 AND quantity > 0", name="positive"),)

    created_date: date = Field(sa_column=Column(Date, primary_key=True))
    product_id: int = Field(sa_column=Column(Integer, primary_key=True))
    orders: int = Field(sa_column=Column(BigInteger, nullable=False))
    quantity: int = Field(sa_column=Column(BigInteger, nullable=False))


class ProductSales(SQLModel, table=True):
    """Per product over all time: what the unfiltered KPIs read."""

    __tablename__ = "product_sales"
    __table_args__ = (CheckConstraint("orders > 0 AND quantity > 0", name="positive"),)

    product_id: int = Field(sa_column=Column(Integer, primary_key=True))
    orders: int = Field(sa_column=Column(BigInteger, nullable=False))
    quantity: int = Field(sa_column=Column(BigInteger, nullable=False))
