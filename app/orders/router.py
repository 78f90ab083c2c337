"""GET /orders: the merged order view."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.analytics import service as analytics
from app.analytics.router import USD_ERRORS
from app.catalog.models import MAX_CATEGORY, MAX_INT4
from app.db import SessionDep
from app.errors import DATABASE_ERRORS
from app.filters import FxModeDep, PeriodDep
from app.formats import (
    CursorQuery,
    Format,
    FormatDep,
    LimitQuery,
    csv_response,
    decode_cursor,
    encode_cursor,
)
from app.fx.router import FxDep
from app.orders import queries, service
from app.orders.schemas import OrderPage

router = APIRouter(tags=["orders"], responses=DATABASE_ERRORS)


@router.get(
    "/orders",
    summary="Orders with their product, totals in BRL and USD",
    response_model=OrderPage,
    responses=USD_ERRORS,
)
async def orders(
    request: Request,
    session: SessionDep,
    fx: FxDep,
    fmt: FormatDep,
    period: PeriodDep,
    mode: FxModeDep,
    product_id: Annotated[int | None, Query(ge=1, le=MAX_INT4)] = None,
    category: Annotated[
        str | None,
        # PostgreSQL text cannot hold NUL: refuse it here rather than fail on it there.
        Query(min_length=1, max_length=MAX_CATEGORY, pattern="^[^\x00]+$"),
    ] = None,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> OrderPage | Response:
    if fmt is Format.CSV:
        everything = await analytics.conversion(session=session, fx=fx, mode=mode, period=period)
        bounds = period.params()
        args: list[Any] = [bounds["start"], bounds["end"], product_id, category]
        body = service.stream(
            engine=request.state.engine,
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
        product_id=product_id,
        category=category,
        after=after,
        limit=limit,
    )
    next_cursor = (
        encode_cursor([items[-1].order_created_date.isoformat(), items[-1].order_id])
        if more
        else None
    )
    return OrderPage(items=items, next_cursor=next_cursor, fx=conv.info() if conv else None)
