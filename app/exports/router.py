"""The assessment's three files, as CSV downloads: same names, same columns, exact money."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from app.analytics import service as analytics
from app.db import SessionDep
from app.errors import DATABASE_ERRORS, ErrorResponse, NotAcceptable
from app.forecasting import queries as forecast_queries
from app.fx.deps import FxDep
from app.fx.schemas import fx_headers
from app.kit.csv import csv_response, csv_rows
from app.kit.deps import EngineDep
from app.kit.openapi import FX_ERRORS
from app.kit.params import FxModeDep, Period
from app.kit.routes import read
from app.orders import queries, service

CSV_ONLY: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
    406: {"model": ErrorResponse, "description": "The client does not accept text/csv"},
}


def accepts_csv(request: Request) -> None:
    """These files are CSV only: an Accept that rules CSV out is 406."""
    accept = request.headers.get("accept", "").strip()
    if not accept:
        return
    ranges = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    if ranges & {"text/csv", "text/*", "*/*"}:
        return
    raise NotAcceptable("This export is text/csv only.", details={"accept": accept[:200]})


# Every export is a CSV file, streamed.
router = APIRouter(
    prefix="/exports",
    tags=["exports"],
    dependencies=[Depends(accepts_csv)],
    responses={**DATABASE_ERRORS, **CSV_ONLY},
    default_response_class=StreamingResponse,
)


@read(router, "/order_full_information.csv", None, {})
async def order_full_information(engine: EngineDep) -> StreamingResponse:
    """order_created_date, order_id, product_name, quantity, total_price (BRL)"""
    body = service.stream(
        engine=engine,
        header=queries.ORDER_FULL_INFORMATION_HEADER,
        query=queries.COPY_ORDER_FULL_INFORMATION,
        args=[],
    )
    return csv_response(body, filename="order_full_information.csv")


@read(router, "/fixed_order_full_information.csv", None, FX_ERRORS)
async def fixed_order_full_information(
    engine: EngineDep, session: SessionDep, fx: FxDep, mode: FxModeDep
) -> StreamingResponse:
    """The same, with total_price_br and total_price_us = round(total_price_br × rate, 2)"""
    conv = await analytics.conversion(analytics.UsdQuery(session, fx, mode, Period()))
    body = service.stream(
        engine=engine,
        header=queries.FIXED_ORDER_FULL_INFORMATION_HEADER,
        query=queries.copy_fixed_order_full_information(mode),
        args=service.rate_args(conv),
    )
    return csv_response(body, filename="fixed_order_full_information.csv", headers=conv.headers())


@read(router, "/kpi_product_orders.csv", None, FX_ERRORS)
async def kpi_product_orders(session: SessionDep, fx: FxDep, mode: FxModeDep) -> StreamingResponse:
    """kpi_name,value: max_order_date, most_demanded_product, most_demanded_product_sales
    (USD), top_categories"""
    kpis = await analytics.kpis(analytics.UsdQuery(session, fx, mode, Period()))
    day, product = kpis.max_order_date, kpis.most_demanded_product
    rows = [
        ("max_order_date", day.date if day else ""),
        ("most_demanded_product", product.product_name if product else ""),
        ("most_demanded_product_sales", product.sales_usd if product else ""),
        ("top_categories", " > ".join(c.category for c in kpis.top_categories)),
    ]
    return csv_response(
        csv_rows(("kpi_name", "value"), rows),
        filename="kpi_product_orders.csv",
        headers=fx_headers(kpis.fx),
    )


@read(router, "/predicted_product_demand.csv", None, {})
async def predicted_product_demand(engine: EngineDep) -> StreamingResponse:
    """The latest succeeded forecast run: run_id, product_id, product_name, date, quantity,
    lo_80, hi_80, lo_95, hi_95, model"""
    return _forecast_csv(
        engine, forecast_queries.EXPORT_HEADER, forecast_queries.EXPORT_ROWS, "product"
    )


@read(router, "/predicted_level_demand.csv", None, {})
async def predicted_level_demand(engine: EngineDep) -> StreamingResponse:
    """The latest succeeded forecast run's total and categories: run_id, level, category,
    date, quantity, lo_80, hi_80, lo_95, hi_95, unallocated, model"""
    return _forecast_csv(
        engine, forecast_queries.LEVEL_EXPORT_HEADER, forecast_queries.LEVEL_EXPORT_ROWS, "level"
    )


def _forecast_csv(
    engine: AsyncEngine, header: tuple[str, ...], query: str, level: str
) -> StreamingResponse:
    """The latest succeeded run's forecasts (`predicted_{level}_demand.csv`), streamed."""
    body = service.stream(engine=engine, header=header, query=query, args=[])
    return csv_response(body, filename=f"predicted_{level}_demand.csv")
