"""GET /kpis and /insights/*, as JSON or CSV."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from app.analytics import service
from app.analytics.deps import UsdReadDep
from app.analytics.schemas import (
    AverageTicket,
    DailyRevenue,
    DailyRevenuePage,
    Growth,
    GrowthPage,
    Kpis,
    TopCategories,
)
from app.analytics.service import GrowthBasis
from app.answers.route import CachedRead
from app.db import SessionDep
from app.errors import DATABASE_ERRORS
from app.fx.schemas import fx_headers
from app.kit.csv import csv_line, csv_lines, csv_response
from app.kit.deps import SessionmakerDep
from app.kit.json import json_answer
from app.kit.negotiation import Format, FormatDep, answer_as, items_as
from app.kit.openapi import USD_ERRORS
from app.kit.pagination import MAX_LIMIT, CursorQuery, Keyset, Paging, limit_query
from app.kit.params import PeriodDep
from app.kit.routes import read

router = APIRouter(tags=["analytics"], responses=DATABASE_ERRORS, route_class=CachedRead)


DAYS = Keyset[DailyRevenue]((date,), key=lambda day: (day.date,))


def days_page(
    limit: Annotated[int, limit_query("Days")] = MAX_LIMIT, cursor: CursorQuery = None
) -> Paging:
    return Paging(limit, cursor)


@read(router, "/kpis", Kpis, USD_ERRORS)
async def kpis(asked: UsdReadDep) -> Kpis | Response:
    """The three KPIs: busiest day, most demanded product, top categories"""
    result = await service.kpis(asked.query)
    day, product = result.max_order_date, result.most_demanded_product
    rows = [
        ("max_order_date", day.date if day else ""),
        ("max_order_date_orders", day.orders if day else ""),
        ("most_demanded_product", product.product_name if product else ""),
        ("most_demanded_product_id", product.product_id if product else ""),
        ("most_demanded_product_quantity", product.quantity if product else ""),
        ("most_demanded_product_sales_brl", product.sales_brl if product else ""),
        ("most_demanded_product_sales_usd", product.sales_usd if product else ""),
        ("top_categories", " > ".join(c.category for c in result.top_categories)),
    ]
    return answer_as(
        asked.fmt,
        result,
        ("kpi_name", "value"),
        rows,
        filename="kpis.csv",
        headers=fx_headers(result.fx),
    )


DAILY_COLUMNS = ("date", "orders", "quantity", "revenue_brl", "revenue_usd", "revenue_brl_7d_avg")


async def _csv_pages(
    header: tuple[str, ...], pages: AsyncIterator[list[tuple[Any, ...]]]
) -> AsyncIterator[bytes]:
    # The header comes with the first page, once the pages' connection is had.
    head = csv_line(header)
    async for page in pages:
        yield head + csv_lines(page)
        head = b""
    if head:
        yield head


@read(router, "/insights/daily-revenue", DailyRevenuePage, USD_ERRORS)
async def daily_revenue(
    asked: UsdReadDep,
    sessionmaker: SessionmakerDep,
    page_asked: Annotated[Paging, Depends(days_page)],
) -> DailyRevenuePage | Response:
    """Revenue per calendar day, zero-filled, with a 7-day moving average"""
    q = asked.query
    if asked.fmt is Format.CSV:
        # Streamed a page of days at a time: the series may span thousands of years.
        conv = await service.daily_revenue_conversion(q)
        pages = service.daily_revenue_pages(sessionmaker=sessionmaker, conv=conv, period=q.period)
        return csv_response(
            _csv_pages(DAILY_COLUMNS, pages),
            filename="daily_revenue.csv",
            headers=conv.headers() if conv else {},
        )
    limit = page_asked.limit
    page = await service.daily_revenue(q, after=DAYS.after(page_asked.cursor), limit=limit + 1)
    items, next_cursor = DAYS.cut(page.items, limit)
    return json_answer(
        {
            "items": [vars(item) for item in items],
            "next_cursor": next_cursor,
            "fx": page.conversion.info().model_dump(mode="json") if page.conversion else None,
        }
    )


@read(router, "/insights/average-ticket", AverageTicket, USD_ERRORS)
async def average_ticket(asked: UsdReadDep) -> AverageTicket | Response:
    """Orders, revenue and the average ticket in BRL and USD"""
    result = await service.average_ticket(asked.query)
    columns = ("orders", "revenue_brl", "average_ticket_brl", "average_ticket_usd")
    rows = [[getattr(result, c) for c in columns]]
    return answer_as(
        asked.fmt,
        result,
        columns,
        rows,
        filename="average_ticket.csv",
        headers=fx_headers(result.fx),
    )


@read(router, "/insights/top-categories", TopCategories)
async def top_categories(
    session: SessionDep,
    fmt: FormatDep,
    period: PeriodDep,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Categories listed (ties: name ascending)")
    ] = 10,
) -> TopCategories | Response:
    """Units per category: the top `limit`, and every other category summed"""
    result = await service.top_categories(session=session, period=period, limit=limit)
    # The others' row: no category, how many categories it sums.
    rows = [(c.category, c.quantity, 1) for c in result.items]
    if result.other:
        rows.append(("", result.other.quantity, result.other.categories))
    columns = ("category", "quantity", "categories")
    return answer_as(fmt, result, columns, rows, filename="top_categories.csv")


@read(router, "/insights/top-growth", GrowthPage)
async def top_growth(
    session: SessionDep,
    fmt: FormatDep,
    period: PeriodDep,
    basis: Annotated[
        GrowthBasis,
        Query(
            description="`calendar`: consecutive calendar days, a day without sales is 0;"
            " `previous_sale`: against the product's own previous sale day (the assessment's LAG)"
        ),
    ] = GrowthBasis.CALENDAR,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="How many (ties: earliest date, then product)")
    ] = 1,
) -> GrowthPage | Response:
    """The products with the highest day-over-day growth in units"""
    items = await service.top_growth(session=session, period=period, basis=basis, limit=limit)
    page = GrowthPage(items=items, basis=basis.value)
    return items_as(fmt, page, items, tuple(Growth.model_fields), filename="top_growth.csv")
