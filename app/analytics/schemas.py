"""What the KPI and insight endpoints answer. Money is an exact 2-place string."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from app.fx.schemas import FxInfo
from app.kit.pagination import Page

Money = str


class PeriodOut(BaseModel):
    start: dt.date | None = Field(description="First order date covered (null: no orders)")
    end: dt.date | None = Field(description="Last order date covered")


class MaxOrderDate(BaseModel):
    date: dt.date
    orders: int


class MostDemandedProduct(BaseModel):
    product_id: int | str
    product_name: str
    quantity: int
    sales_brl: Money = Field(examples=["891.80"])
    sales_usd: Money = Field(examples=["164.95"])


class CategoryUnits(BaseModel):
    category: str
    quantity: int


class OtherCategories(BaseModel):
    categories: int = Field(description="How many categories are summed here")
    quantity: int


class TopCategories(BaseModel):
    items: list[CategoryUnits] = Field(
        description="The `limit` categories with the most units, the most first"
        " (ties: name ascending)"
    )
    other: OtherCategories | None = Field(
        description="Every other category with units in the period, summed; null when none"
    )


class Kpis(BaseModel):
    max_order_date: MaxOrderDate | None
    most_demanded_product: MostDemandedProduct | None
    top_categories: list[CategoryUnits]
    fx: FxInfo | None = Field(description="The rate of `sales_usd` (null with no orders)")
    period: PeriodOut


class DailyRevenue(BaseModel):
    date: dt.date
    orders: int
    quantity: int
    revenue_brl: Money
    revenue_usd: Money
    revenue_brl_7d_avg: Money


class DailyRevenuePage(Page[DailyRevenue]):
    fx: FxInfo | None


class AverageTicket(BaseModel):
    orders: int
    revenue_brl: Money
    average_ticket_brl: Money | None
    average_ticket_usd: Money | None
    fx: FxInfo | None
    period: PeriodOut


class Growth(BaseModel):
    product_id: int | str
    product_name: str
    date: dt.date
    previous_date: dt.date
    quantity: int
    previous_quantity: int
    growth: int


class GrowthPage(BaseModel):
    items: list[Growth]
    next_cursor: str | None = None
    basis: str
