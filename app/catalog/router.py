"""GET /products: the catalogue, best sellers first, found by id, name or category (the
dashboard's product search; a picker of every product would be megabytes at 30,000)."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import text

from app.answers.route import CachedRead
from app.db import SessionDep
from app.errors import DATABASE_ERRORS
from app.formats import Format, FormatDep, csv_response, csv_rows
from app.responses import READ_ERRORS

router = APIRouter(tags=["products"], responses=DATABASE_ERRORS, route_class=CachedRead)

# Best sellers first (units over all time, from the rollup), then by id. `:search` is the
# text as typed: an exact id, or a piece of the name or the category, case ignored
# (`:pattern`, its LIKE metacharacters escaped).
SEARCH = """
SELECT p.product_id, p.name, p.category, coalesce(s.quantity, 0) AS units_sold
FROM products p LEFT JOIN product_sales s USING (product_id)
WHERE CAST(:search AS text) IS NULL
    OR p.product_id::text = :search
    OR p.name ILIKE :pattern ESCAPE '\\'
    OR p.category ILIKE :pattern ESCAPE '\\'
ORDER BY units_sold DESC, p.product_id
LIMIT :limit
"""

COLUMNS = ("product_id", "name", "category", "units_sold")


class ProductItem(BaseModel):
    product_id: int
    name: str
    category: str
    units_sold: int = Field(description="Units sold over all time")


class ProductPage(BaseModel):
    items: list[ProductItem]


def like_pattern(search: str) -> str:
    """`%search%` with LIKE's own characters (`%`, `_`, the escape) taken literally."""
    return "%" + re.sub(r"([\\%_])", r"\\\1", search) + "%"


@router.get(
    "/products",
    summary="Products, best sellers first; `search` finds them by id, name or category",
    response_model=ProductPage,
    responses=READ_ERRORS,
)
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
    term = search.strip() if search else None
    params = {"search": term or None, "pattern": like_pattern(term or ""), "limit": limit}
    rows = (await session.execute(text(SEARCH), params)).all()
    page = ProductPage(items=[ProductItem(**r._mapping) for r in rows])
    if fmt is Format.JSON:
        return page
    data = [tuple(getattr(i, c) for c in COLUMNS) for i in page.items]
    return csv_response(csv_rows(COLUMNS, data), filename="products.csv")
