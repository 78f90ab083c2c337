"""What GET /orders answers."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from app.fx.schemas import FxInfo
from app.kit.pagination import Page


class OrderLine(BaseModel):
    """One order with its product: the assessment's merged view."""

    order_id: int | str = Field(description="As the file wrote it: an integer, or text")
    order_created_date: date
    product_id: int | str = Field(description="As the file wrote it: an integer, or text")
    product_name: str
    category: str
    quantity: int
    unit_price_brl: str = Field(examples=["69.06"])
    total_price_brl: str = Field(examples=["138.12"])
    total_price_usd: str = Field(examples=["25.55"])


class OrderPage(Page[OrderLine]):
    fx: FxInfo | None
