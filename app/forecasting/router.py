"""POST /forecasts/runs, GET /forecasts/*, as JSON or CSV."""

from __future__ import annotations

import re
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import JSONResponse, Response

from app.alerts import service as alerts
from app.alerts.deps import AlerterDep
from app.alerts.service import Alerter
from app.answers.route import CachedRead
from app.catalog.keys import ProductIdPath
from app.db import SessionDep
from app.errors import DATABASE_ERRORS, ErrorResponse
from app.forecasting import runs, service
from app.forecasting.deps import ForecastRunnerDep
from app.forecasting.options import Options
from app.forecasting.schemas import (
    ACCURACY_COLUMNS,
    AccuracyPage,
    ForecastCategoryPage,
    ForecastProductPage,
    LevelForecast,
    ProductForecast,
    Run,
    RunRequest,
    SalesHistory,
)
from app.kit.csv import csv_response, csv_rows
from app.kit.deps import EngineDep, SettingsDep
from app.kit.negotiation import Format, FormatDep, answer_as, items_as
from app.kit.openapi import CSV_ALSO, READ_ERRORS
from app.kit.routes import read
from app.security import ApiKeyDep

if TYPE_CHECKING:  # the engine imports pandas and the models: only when a run computes
    from app.forecasting.engine import Result

# Reads answer from memory while the data version holds: forecast runs bump it when they
# start, finish or are pruned (migration 0010), not at each progress step.
router = APIRouter(
    prefix="/forecasts", tags=["forecasts"], responses=DATABASE_ERRORS, route_class=CachedRead
)
# A running run's answer changes with its progress, which the data version does not
# follow: it is never kept, by us or by anyone.
LIVE = {"Cache-Control": "no-store"}

NO_FORECAST: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "`no_forecast`: unknown product, or no run"}
}
FORECAST_READ = {**READ_ERRORS, **NO_FORECAST}
RUN_READ = {**READ_ERRORS, 404: {"model": ErrorResponse, "description": "`run_not_found`"}}
# PostgreSQL text cannot hold NUL: refused here (422) rather than failing there (500).
CategoryPath = Annotated[str, Path(min_length=1, max_length=100, pattern="^[^\x00]+$")]
DAY_COLUMNS = ("date", "quantity", "lo_80", "hi_80", "lo_95", "hi_95")
# How many days of sales before a forecast its history answers (a year and a day at most).
HistoryDays = Annotated[
    int,
    Query(ge=1, le=366, description="Days of sales up to the run's `data_until` (≤ 366)"),
]
RUN_COLUMNS = (
    "run_id", "status", "started_at", "finished_at", "data_until", "horizon", "engine",
    "products", "progress",
)  # fmt: skip


def _file_part(product_id: int | str) -> str:
    """An id as a file name may hold it: a code's characters other than letters, digits,
    `.`, `_` and `-` as `_` (a header is Latin-1, and a quote would end the name)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", str(product_id))


def _run_answer(
    run: Run, fmt: Format, status_code: int = 200, response: Response | None = None
) -> Run | Response:
    live = LIVE if run.status == "running" else {}
    if fmt is Format.CSV:
        csv = csv_response(
            csv_rows(RUN_COLUMNS, [tuple(getattr(run, c) for c in RUN_COLUMNS)]),
            filename=f"forecast_run_{run.run_id}.csv",
            headers=live,
        )
        csv.status_code = status_code
        return csv
    if status_code != 200:
        return JSONResponse(run.model_dump(mode="json"), status_code=status_code, headers=live)
    if response is not None:
        response.headers.update(live)
    return run


async def _telling(
    work: Coroutine[Any, Any, Result | None], handle: runs.Handle, alerter: Alerter
) -> None:
    """Run the forecast, then raise what it calls for: a failure, or a loss to seasonal
    naive at category level."""
    result = await work
    accuracy = result.level_accuracy if result is not None else []
    alerter.soon(alerts.forecast_events(handle.run_id, handle.error, accuracy))


@router.post(
    "/runs",
    summary="Start a forecast run (backtest, choose, fit, predict, store) in the background",
    status_code=202,
    response_model=Run,
    dependencies=[ApiKeyDep],
    responses={
        202: CSV_ALSO,  # with `format=csv` or Accept: text/csv, as the run's reads
        400: {"model": ErrorResponse, "description": "A body that cannot be parsed"},
        401: {"model": ErrorResponse, "description": "Missing or wrong X-API-Key"},
        403: {"model": ErrorResponse, "description": "A read key: it may not write"},
        406: {"model": ErrorResponse, "description": "Unsupported Accept"},
        409: {"model": ErrorResponse, "description": "`run_in_progress`: details.run_id"},
        422: {"model": ErrorResponse, "description": "horizon outside 1 … 365"},
    },
)
async def start_run(
    engine: EngineDep,
    settings: SettingsDep,
    runner: ForecastRunnerDep,
    alerter: AlerterDep,
    fmt: FormatDep,
    body: Annotated[RunRequest | None, Body()] = None,
) -> Run | Response:
    request = body or RunRequest()
    handle = await runs.start(
        url=engine.url, horizon=request.horizon, engine_name=settings.forecast_engine.value
    )
    options = Options(
        engine=settings.forecast_engine.value,
        dask_address=settings.dask_scheduler_address,
        history_days=settings.forecast_history_days,
        time_budget_seconds=settings.forecast_time_budget_seconds,
    )
    work = runs.execute(
        handle, url=engine.url, options=options, keep_runs=settings.forecast_keep_runs
    )
    runner.launch(_telling(work, handle, alerter))
    return _run_answer(service.run_of(handle.row), fmt, status_code=202)


@read(router, "/runs/latest", Run, RUN_READ)
async def latest_run(session: SessionDep, fmt: FormatDep, response: Response) -> Run | Response:
    """The newest run, whatever its status"""
    return _run_answer(await service.get_run(session=session, run_id=None), fmt, 200, response)


@read(router, "/runs/{run_id}", Run, RUN_READ)
async def get_run(
    session: SessionDep,
    fmt: FormatDep,
    run_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    response: Response,
) -> Run | Response:
    """One run: status, progress, accuracy"""
    return _run_answer(await service.get_run(session=session, run_id=run_id), fmt, 200, response)


@read(router, "/products", ForecastProductPage)
async def forecast_products(session: SessionDep, fmt: FormatDep) -> ForecastProductPage | Response:
    """The products the served run forecast, with their model"""
    page = await service.products(session=session)
    cols = ("product_id", "product_name", "category", "model", "mase", "seasonal_naive_mase")
    return items_as(fmt, page, page.items, cols, filename="forecast_products.csv")


@read(router, "/products/{product_id}", ProductForecast, FORECAST_READ)
async def product_forecast(
    session: SessionDep, fmt: FormatDep, product_id: ProductIdPath
) -> ProductForecast | Response:
    """A product's forecast from the latest succeeded run, with its backtest"""
    product = await service.product_ref(session=session, product_id=product_id)
    result = await service.product(session=session, product=product)
    rows = ((result.model, *(getattr(d, c) for c in DAY_COLUMNS)) for d in result.items)
    filename = f"forecast_product_{_file_part(product.product_id)}.csv"
    return answer_as(fmt, result, ("model", *DAY_COLUMNS), rows, filename=filename)


def _history_answer(history: SalesHistory, fmt: Format, filename: str) -> SalesHistory | Response:
    rows = ((d.date, d.quantity) for d in history.items)
    return answer_as(fmt, history, ("date", "quantity"), rows, filename=filename)


@read(router, "/products/{product_id}/history", SalesHistory, FORECAST_READ)
async def product_history(
    session: SessionDep, fmt: FormatDep, product_id: ProductIdPath, days: HistoryDays = 90
) -> SalesHistory | Response:
    """A product's units sold per day up to the served run's data_until"""
    ref = await service.product_ref(session=session, product_id=product_id)
    history = await service.product_history(session=session, ref=ref, days=days)
    return _history_answer(history, fmt, f"history_product_{_file_part(ref.product_id)}.csv")


def _level_answer(result: LevelForecast, fmt: Format, filename: str) -> LevelForecast | Response:
    columns = ("model", *DAY_COLUMNS, "unallocated")
    rows = ((result.model, *(getattr(d, c) for c in columns[1:])) for d in result.items)
    return answer_as(fmt, result, columns, rows, filename=filename)


@read(router, "/categories", ForecastCategoryPage)
async def forecast_categories(
    session: SessionDep, fmt: FormatDep
) -> ForecastCategoryPage | Response:
    """The served run's categories, the most units expected first"""
    page = await service.categories(session=session)
    cols = ("category", "model", "quantity", "unallocated", "products")
    return items_as(fmt, page, page.items, cols, filename="forecast_categories.csv")


@read(router, "/categories/{category}", LevelForecast, FORECAST_READ)
async def category_forecast(
    session: SessionDep, fmt: FormatDep, category: CategoryPath
) -> LevelForecast | Response:
    """A category's forecast: from its own series (new products' sales included),
    reconciled with the total; `unallocated`: what no product's forecast holds"""
    result = await service.level(session=session, level="category", key=category)
    return _level_answer(result, fmt, "forecast_category.csv")


@read(router, "/categories/{category}/history", SalesHistory, FORECAST_READ)
async def category_history(
    session: SessionDep,
    fmt: FormatDep,
    category: CategoryPath,
    days: HistoryDays = 90,
) -> SalesHistory | Response:
    """A category's units sold per day up to the served run's data_until"""
    history = await service.level_history(session=session, category=category, days=days)
    return _history_answer(history, fmt, "history_category.csv")


@read(router, "/total", LevelForecast, FORECAST_READ)
async def total_forecast(session: SessionDep, fmt: FormatDep) -> LevelForecast | Response:
    """The whole shop's forecast: from its own series, reconciled with the categories"""
    result = await service.level(session=session, level="total", key="")
    return _level_answer(result, fmt, "forecast_total.csv")


@read(router, "/total/history", SalesHistory, FORECAST_READ)
async def total_history(
    session: SessionDep, fmt: FormatDep, days: HistoryDays = 90
) -> SalesHistory | Response:
    """The whole shop's units sold per day up to the served run's data_until"""
    history = await service.level_history(session=session, category=None, days=days)
    return _history_answer(history, fmt, "history_total.csv")


@read(router, "/accuracy", AccuracyPage)
async def accuracy(session: SessionDep, fmt: FormatDep) -> AccuracyPage | Response:
    """Pooled backtest accuracy per model (chosen: where it serves; all: everywhere)"""
    page = await service.accuracy(session=session)
    return items_as(fmt, page, page.items, ACCURACY_COLUMNS, filename="forecast_accuracy.csv")
