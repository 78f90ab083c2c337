"""GET /products: the catalogue, best sellers first, found by id, name or category (the
dashboard's product search; a picker of every product would be megabytes at 30,000).
GET /products/{product_id}: one product with every price it has had."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import text

from app.answers.route import CachedRead
from app.catalog import keys
from app.db import SessionDep
from app.errors import DATABASE_ERRORS, ErrorResponse, NotFound
from app.kit.money import money
from app.kit.negotiation import FormatDep, items_as
from app.kit.openapi import READ_ERRORS
from app.kit.routes import read

router = APIRouter(tags=["products"], responses=DATABASE_ERRORS, route_class=CachedRead)

# Best sellers first (units over all time, from the rollup), then by id. `:search` is the
# text as typed: an exact id, or a piece of the name or the category, case ignored
# (`:pattern`, its LIKE metacharacters escaped).
SEARCH = """
SELECT coalesce(p.code, p.product_id::text) AS product_id, p.code IS NULL AS integer_id,
    p.name, p.category, coalesce(s.quantity, 0) AS units_sold
FROM products p LEFT JOIN product_sales s USING (product_id)
WHERE CAST(:search AS text) IS NULL
    OR (p.code IS NULL AND p.product_id::text = :search) OR p.code = :search
    OR p.name ILIKE :pattern ESCAPE '\\'
    OR p.category ILIKE :pattern ESCAPE '\\'
ORDER BY units_sold DESC, p.product_id
LIMIT :limit
"""

COLUMNS = ("product_id", "name", "category", "units_sold")


class ProductItem(BaseModel):
    product_id: int | str = Field(description="As the file wrote it: an integer, or text")
    name: str
    category: str
    units_sold: int = Field(description="Units sold over all time")


class ProductPage(BaseModel):
    items: list[ProductItem]


def like_pattern(search: str) -> str:
    """`%search%` with LIKE's own characters (`%`, `_`, the escape) taken literally."""
    return "%" + re.sub(r"([\\%_])", r"\\\1", search) + "%"


@read(router, "/products", ProductPage)
async def products(
    session: SessionDep,
    fmt: FormatDep,
    search: Annotated[
        str | None,
        # PostgreSQL text cannot hold NUL: refused here (422) rather than failing there.
        Query(
            max_length=100,
            pattern="^[^\x00]*$",
            description="An id, or part of a name or category (any case); empty: every product",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Products at most")] = 20,
) -> ProductPage | Response:
    """Products, best sellers first; `search` finds them by id, name or category"""
    term = search.strip() if search else None
    params = {"search": term or None, "pattern": like_pattern(term or ""), "limit": limit}
    rows = (await session.execute(text(SEARCH), params)).all()
    page = ProductPage(
        items=[
            ProductItem(
                product_id=int(r.product_id) if r.integer_id else r.product_id,
                name=r.name,
                category=r.category,
                units_sold=r.units_sold,
            )
            for r in rows
        ]
    )
    return items_as(fmt, page, page.items, COLUMNS, filename="products.csv")


PRODUCT = """
SELECT p.product_id, p.code, p.name, p.category, p.price,
    coalesce(s.quantity, 0) AS units_sold, coalesce(s.revenue_brl, 0) AS revenue_brl
FROM products p LEFT JOIN product_sales s USING (product_id)
WHERE {by}
"""
# An integer id is its own key; any other text a code.
BY_KEY, BY_CODE = "p.product_id = :key AND p.code IS NULL", "p.code = :code"
# Newest first; the latest is open-ended (valid_to NULL).
PRICES = """
SELECT price, valid_from, NULLIF(valid_to, 'infinity') AS valid_to FROM product_prices
WHERE product_id = :product_id
ORDER BY valid_from DESC
"""


class ProductNotFound(NotFound):
    code = "product_not_found"


NOT_FOUND = {"model": ErrorResponse, "description": "`product_not_found`"}


class PriceItem(BaseModel):
    price: str = Field(description="BRL", examples=["179.34"])
    valid_from: date = Field(
        description="In effect from this date (the first price holds for earlier dates too)"
    )
    valid_to: date | None = Field(description="Until the day before this one; null: still")


class ProductDetail(BaseModel):
    product_id: int | str = Field(description="As the file wrote it: an integer, or text")
    name: str
    category: str
    price: str = Field(description="The latest price set (BRL)", examples=["179.34"])
    units_sold: int = Field(description="Units sold over all time")
    revenue_brl: str = Field(
        description="Revenue over all time, each order at the price it was sold at"
    )
    prices: list[PriceItem] = Field(description="Every price it has had, newest first")


@read(router, "/products/{product_id}", ProductDetail, {**READ_ERRORS, 404: NOT_FOUND})
async def product(session: SessionDep, product_id: keys.ProductIdPath) -> ProductDetail:
    """One product, with its price history"""
    key = keys.integer_key(product_id)
    by_key = key is not None
    params: dict[str, int | str | None] = {"key": key} if by_key else {"code": product_id}
    found = (
        await session.execute(text(PRODUCT.format(by=BY_KEY if by_key else BY_CODE)), params)
    ).first()
    if found is None:
        raise ProductNotFound(f"There is no product {product_id}.")
    prices = (await session.execute(text(PRICES), {"product_id": found.product_id})).all()
    return ProductDetail(
        product_id=found.code or found.product_id,
        name=found.name,
        category=found.category,
        price=money(found.price) or "0.00",
        units_sold=found.units_sold,
        revenue_brl=money(found.revenue_brl) or "0.00",
        prices=[
            PriceItem(price=money(r.price) or "0.00", valid_from=r.valid_from, valid_to=r.valid_to)
            for r in prices
        ],
    )
