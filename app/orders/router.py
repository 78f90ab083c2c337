"""GET /orders: the merged order view."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import Field

from app.analytics import service as analytics
from app.answers.route import CachedRead
from app.catalog.models import MAX_CATEGORY, MAX_INT4
from app.db import SessionDep
from app.deps import EngineDep
from app.errors import DATABASE_ERRORS
from app.filters import ViewDep
from app.formats import (
    Format,
    FormatDep,
    PageQuery,
    csv_response,
    decode_cursor,
    encode_cursor,
    json_answer,
)
from app.fx.deps import FxDep
from app.orders import queries, service
from app.orders.schemas import OrderPage
from app.responses import USD_ERRORS

router = APIRouter(tags=["orders"], responses=DATABASE_ERRORS, route_class=CachedRead)


class OrderQuery(PageQuery):
    """Which orders, and which page of them."""

    product_id: int | None = Field(None, ge=1, le=MAX_INT4)
    # PostgreSQL text cannot hold NUL: refuse it here rather than fail on it there.
    category: str | None = Field(None, min_length=1, max_length=MAX_CATEGORY, pattern="^[^\x00]+$")


@router.get(
    "/orders",
    summary="Orders with their product, totals in BRL and USD",
    response_model=OrderPage,
    responses=USD_ERRORS,
)
async def orders(
    engine: EngineDep,
    session: SessionDep,
    fx: FxDep,
    fmt: FormatDep,
    view: ViewDep,
    query: Annotated[OrderQuery, Query()],
) -> OrderPage | Response:
    period, mode = view.period, view.mode
    product_id, category, cursor = query.product_id, query.category, query.cursor
    if fmt is Format.CSV:
        everything = await analytics.conversion(session=session, fx=fx, mode=mode, period=period)
        bounds = period.params()
        args: list[Any] = [bounds["start"], bounds["end"], product_id, category]
        body = service.stream(
            engine=engine,
            header=queries.ORDERS_HEADER,
            query=queries.copy_orders(mode),
            args=args + service.rate_args(everything),
        )
        return csv_response(body, filename="orders.csv", headers=everything.headers())
    after = None
    if cursor:
        day, order_id = decode_cursor(cursor, [date, int])
        after = (day, order_id)
    items, conv, more = await service.page(
        session=session,
        fx=fx,
        mode=mode,
        period=period,
        which=service.Which(product_id, category, after, query.limit),
    )
    next_cursor = (
        encode_cursor([items[-1].order_created_date.isoformat(), items[-1].order_id])
        if more
        else None
    )
    return json_answer(
        {
            "items": [vars(item) for item in items],
            "next_cursor": next_cursor,
            "fx": conv.info().model_dump(mode="json") if conv else None,
        }
    )
