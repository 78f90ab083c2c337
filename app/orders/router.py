"""GET /orders: the merged order view."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from app.analytics import service as analytics
from app.analytics.deps import UsdReadDep
from app.answers.route import CachedRead
from app.catalog.models import MAX_CATEGORY, MAX_CODE
from app.errors import DATABASE_ERRORS
from app.kit.csv import csv_response
from app.kit.deps import EngineDep
from app.kit.json import json_answer
from app.kit.negotiation import Format
from app.kit.openapi import USD_ERRORS
from app.kit.pagination import CursorQuery, LimitQuery
from app.kit.routes import read
from app.orders import queries, service
from app.orders.schemas import OrderPage

router = APIRouter(tags=["orders"], responses=DATABASE_ERRORS, route_class=CachedRead)


# PostgreSQL text cannot hold NUL: refuse it here rather than fail on it there.
ProductIdQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_CODE,
        pattern="^[^\x00]+$",
        description="An integer id, or a text id as the file wrote it",
    ),
]
CategoryQuery = Annotated[
    str | None, Query(min_length=1, max_length=MAX_CATEGORY, pattern="^[^\x00]+$")
]


@dataclass(frozen=True)
class OrderQuery:
    """Which orders (a product id as written, a category), and which page of them."""

    product_id: str | None
    category: str | None
    cursor: str | None
    limit: int


def order_query(
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
    product_id: ProductIdQuery = None,
    category: CategoryQuery = None,
) -> OrderQuery:
    return OrderQuery(product_id, category, cursor, limit)


@read(router, "/orders", OrderPage, USD_ERRORS)
async def orders(
    engine: EngineDep, asked: UsdReadDep, query: Annotated[OrderQuery, Depends(order_query)]
) -> OrderPage | Response:
    """Orders with their product, totals in BRL and USD"""
    product_key = (
        None
        if query.product_id is None
        else await service.product_key(session=asked.query.session, product_id=query.product_id)
    )
    if asked.fmt is Format.CSV:
        everything = await analytics.conversion(asked.query)
        bounds = asked.query.period.params()
        args: list[Any] = [bounds["start"], bounds["end"], product_key, query.category]
        body = service.stream(
            engine=engine,
            header=queries.ORDERS_HEADER,
            query=queries.copy_orders(asked.query.mode),
            args=args + service.rate_args(everything),
        )
        return csv_response(body, filename="orders.csv", headers=everything.headers())
    which = service.Which(product_key, query.category, query.cursor, query.limit)
    found = await service.page(asked.query, which)
    conv = found.conversion
    return json_answer(
        {
            "items": [vars(item) for item in found.items],
            "next_cursor": found.next_cursor,
            "fx": conv.info().model_dump(mode="json") if conv else None,
        }
    )
