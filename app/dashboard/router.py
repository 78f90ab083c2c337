"""GET / (the dashboard page) and the SVG charts it shows. The page reads everything
else from the JSON API; the charts come from the same analytics services."""

from __future__ import annotations

import asyncio
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from app.analytics import service as analytics
from app.catalog.models import MAX_CODE
from app.dashboard import charts
from app.db import SessionDep
from app.errors import AppError
from app.filters import FxModeDep, PeriodDep
from app.forecasting import service as forecasts
from app.fx.deps import FxDep

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
STATIC_URL = "/dashboard/static"

# Same origin only, no inline script or style: the page can reach nothing but this service.
# `blob:` images are the charts, fetched by the page's script with its X-API-Key.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:;"
    " connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# pygal writes its styles inline in the SVG; there is no script in it.
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'"
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

# Orders may span any real days (0001-01-01 to 9999-12-31): a chart draws ten years at most.
CHART_MAX_DAYS = 3660

router = APIRouter(include_in_schema=False)
# The charts are data reads (READ_ACCESS=key guards them); the page itself is open.
charts_router = APIRouter(include_in_schema=False)


class PeriodTooLong(AppError):
    status_code = 422
    code = "period_too_long"


@cache
def _page() -> str:
    return (HERE / "index.html").read_text(encoding="utf-8")


@router.get("/", response_class=HTMLResponse)
async def dashboard() -> HTMLResponse:
    return HTMLResponse(
        _page(),
        headers={
            "Content-Security-Policy": PAGE_CSP,
            "Cache-Control": "no-cache",
            **SECURITY_HEADERS,
        },
    )


def _svg(body: bytes) -> Response:
    return Response(
        body,
        media_type="image/svg+xml",
        headers={
            "Content-Security-Policy": SVG_CSP,
            "Cache-Control": "no-store",
            **SECURITY_HEADERS,
        },
    )


@charts_router.get("/dashboard/charts/daily-revenue.svg")
async def daily_revenue_chart(
    session: SessionDep,
    fx: FxDep,
    period: PeriodDep,
    mode: FxModeDep,
    currency: Annotated[charts.Currency, Query()] = charts.Currency.BRL,
) -> Response:
    rows = await analytics.daily_revenue(
        session=session, fx=fx, mode=mode, period=period, after=None, limit=CHART_MAX_DAYS + 1
    )
    if len(rows.items) > CHART_MAX_DAYS:
        raise PeriodTooLong(
            f"A chart draws at most {CHART_MAX_DAYS} days; pick a shorter period"
            " (the daily revenue endpoint pages through any length).",
            details={"max_days": CHART_MAX_DAYS},
        )
    return _svg(await asyncio.to_thread(charts.daily_revenue, rows.items, currency))


@charts_router.get("/dashboard/charts/top-categories.svg")
async def top_categories_chart(session: SessionDep, period: PeriodDep) -> Response:
    categories = await analytics.top_categories(session=session, period=period)
    return _svg(await asyncio.to_thread(charts.top_categories, categories))


# The forecast panel shows this many days of sales before the forecast.
FORECAST_HISTORY_DAYS = 90


class ForecastSubject(AppError):
    status_code = 422
    code = "invalid_forecast_subject"


@charts_router.get("/dashboard/charts/forecast.svg")
async def forecast_chart(
    session: SessionDep,
    # An integer id, or a text id as the file wrote it (as GET /forecasts/products/{id}).
    product_id: Annotated[
        str | None, Query(min_length=1, max_length=MAX_CODE, pattern="^[^\x00]+$")
    ] = None,
    level: Annotated[Literal["total"] | None, Query()] = None,
    # PostgreSQL text cannot hold NUL: refused here (422) rather than failing there (500).
    category: Annotated[
        str | None, Query(min_length=1, max_length=100, pattern="^[^\x00]+$")
    ] = None,
) -> Response:
    """One product's, the total's (`level=total`) or a category's forecast chart; 404
    `no_forecast` as the forecast reads answer it."""
    subjects = {"product_id": product_id, "level": level, "category": category}
    given = [name for name, value in subjects.items() if value is not None]
    if len(given) != 1:
        raise ForecastSubject(
            "Draw one forecast: give one of product_id, level=total or category.",
            details={"given": given},
        )
    if product_id is not None:
        product = await forecasts.product_ref(session=session, product_id=product_id)
        result = await forecasts.product(session=session, product=product)
        history = (
            await forecasts.recent_units(
                session=session,
                product_id=product.key,
                until=result.data_until,
                days=FORECAST_HISTORY_DAYS,
            )
            if result.data_until
            else []
        )
        return _svg(await asyncio.to_thread(charts.forecast, history, result.items))
    key = category if category is not None else ""
    found = await forecasts.level(
        session=session, level="category" if category is not None else "total", key=key
    )
    history = (
        await forecasts.level_units(
            session=session, category=category, until=found.data_until, days=FORECAST_HISTORY_DAYS
        )
        if found.data_until
        else []
    )
    # A level summed from its products (a run too short to backtest it) has no part
    # beyond them: its zeros are not a figure, so no line is drawn for them.
    beyond = found.model != forecasts.SUM_OF_PRODUCTS
    return _svg(await asyncio.to_thread(charts.forecast, history, found.items, unallocated=beyond))
