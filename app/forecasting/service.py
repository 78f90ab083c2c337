"""Reads of forecasts: runs, a product's or a category's forecast, accuracy.

Each read is one or two indexed statements on the latest succeeded run, so wrapping
them in a cache keyed by data version is a matter of the key."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import Row, RowMapping, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog import keys
from app.errors import NotFound
from app.forecasting import queries, reads
from app.forecasting.schemas import (
    Accuracy,
    AccuracyPage,
    ForecastCategoryItem,
    ForecastCategoryPage,
    ForecastDay,
    ForecastProductItem,
    ForecastProductPage,
    LevelDay,
    LevelForecast,
    ProductAccuracy,
    ProductForecast,
    Run,
    SalesHistory,
    SoldDay,
)

AnswerT = TypeVar("AnswerT", bound=BaseModel)
DIGITS = 3
DAY_NUMBERS = ("quantity", "lo_80", "hi_80", "lo_95", "hi_95")
SUM_OF_PRODUCTS = "sum_of_products"  # levels.SUM_OF_PRODUCTS (not imported: pandas)
LEVEL_INTERVALS = (
    "conformal: the 80% and 95% quantiles of the level's absolute errors over the"
    " backtest (its forecasts reconciled as served), around its forecast, floored at 0"
)
CATEGORY_INTERVALS = (
    "sum of the products' forecasts ± the square root of the sum of their squared"
    " half-widths (errors taken as independent), floored at 0"
)


class NoForecast(NotFound):
    code = "no_forecast"


class RunNotFound(NotFound):
    code = "run_not_found"


async def sweep_dead(*, session: AsyncSession) -> None:
    """Fail runs whose process died (their lock is free), as dead uploads are."""
    await session.execute(text(reads.SWEEP_DEAD), {"key": queries.FORECAST_LOCK_KEY})


def _json(value: Any) -> Any:
    # jsonb comes decoded through SQLAlchemy, as text from a raw asyncpg connection.
    return json.loads(value) if isinstance(value, str) else value


def _answer(schema: type[AnswerT], m: Any, **computed: Any) -> AnswerT:
    """`schema` from a row's mapping `m` whose columns carry its fields' names, but for
    the fields `computed` from them."""
    copied = {name: m[name] for name in schema.model_fields if name not in computed}
    return schema(**copied, **computed)


def run_of(row: Any) -> Run:
    """A run's answer from its row (a SQLAlchemy row or an asyncpg record)."""
    m = row._mapping if hasattr(row, "_mapping") else row
    return _answer(
        Run,
        m,
        progress=round(float(m["progress"]), 4),
        accuracy=[Accuracy(**a) for a in (_json(m["accuracy"]) or [])],
        models=_json(m["models"]) or {},
        error=_json(m["error"]),
        left_out=_json(m["left_out"]),
    )


async def get_run(*, session: AsyncSession, run_id: int | None) -> Run:
    """One run by id, or the newest (`None`); 404 `run_not_found`."""
    await sweep_dead(session=session)
    if run_id is None:
        row = (await session.execute(text(reads.LATEST_RUN))).first()
    else:
        row = (await session.execute(text(reads.GET_RUN), {"run_id": run_id})).first()
    if row is None:
        raise RunNotFound("No such forecast run.", details={"run_id": run_id})
    return run_of(row)


def _level_day(m: Any) -> LevelDay:
    return LevelDay(
        date=m["date"],
        **{k: round(float(m[k]), DIGITS) for k in (*DAY_NUMBERS, "unallocated")},
    )


def _day(m: Any) -> ForecastDay:
    return ForecastDay(
        date=m["date"],
        **{k: round(float(m[k]), DIGITS) for k in DAY_NUMBERS},
    )


NO_PRODUCT_FORECAST = "No forecast for this product: unknown, without sales, or no run yet."


@dataclass(frozen=True)
class ProductRef:
    """A product as a request names it: its id as written (an integer, or a code) and
    the key its forecasts are stored under."""

    product_id: int | str
    key: int


async def product_ref(*, session: AsyncSession, product_id: str) -> ProductRef:
    """The product an id names: an integer id (as uploads read one) is its own key; any
    other text is a code, looked up. 404 `no_forecast` for a code no product has."""
    integer = keys.integer_key(product_id)
    if integer is not None:
        return ProductRef(product_id=integer, key=integer)
    key = await keys.key_of(session, product_id)
    if key is None:
        raise NoForecast(NO_PRODUCT_FORECAST, details={"product_id": product_id})
    return ProductRef(product_id=product_id, key=int(key))


async def _product_run(session: AsyncSession, product: ProductRef) -> RowMapping:
    """The served run's row of a product's forecast, without its days; 404 `no_forecast`."""
    found = (
        await session.execute(text(reads.PRODUCT_FORECAST), {"product_id": product.key})
    ).first()
    if found is None:
        raise NoForecast(NO_PRODUCT_FORECAST, details={"product_id": product.product_id})
    return found._mapping


async def product(*, session: AsyncSession, product: ProductRef) -> ProductForecast:
    """The latest succeeded run's forecast of a product; 404 `no_forecast`."""
    m = await _product_run(session, product)
    items = await session.execute(
        text(reads.PRODUCT_ITEMS), {"run_id": m["run_id"], "product_id": product.key}
    )
    return _answer(
        ProductForecast,
        m,
        product_id=m["code"] or m["product_id"],
        accuracy=_answer(ProductAccuracy, m),
        items=[_day(r._mapping) for r in items],
    )


async def _level_run(session: AsyncSession, level: str, key: str) -> RowMapping:
    """The served run's row of a category's (`key`) or the total's (`key` '') forecast,
    without its days; 404 `no_forecast` if it has none (from the level's own series, or
    for a category of a run from before the levels, from its products)."""
    found = (await session.execute(text(reads.LEVEL_RUN), {"level": level, "key": key})).first()
    details = {"category": key} if level == "category" else {"level": level}
    if found is None:
        raise NoForecast("No forecast run has succeeded yet.", details=details)
    m = found._mapping
    if m["model"] is None and not (level == "category" and m["products"]):
        what = "this category" if level == "category" else "the total"
        raise NoForecast(f"The served run has no forecast of {what}.", details=details)
    return m


async def level(*, session: AsyncSession, level: str, key: str) -> LevelForecast:
    """A category's (`key`) or the total's (`key` '') forecast in the served run, from
    the level's own series (LEVEL_INTERVALS); a run from before the levels serves a
    category as its products' sum. 404 `no_forecast`."""
    m = await _level_run(session, level, key)
    model, intervals = m["model"], LEVEL_INTERVALS
    if model is not None:
        rows = await session.execute(
            text(reads.LEVEL_ITEMS), {"level": level, "key": key, "run_id": m["run_id"]}
        )
        items = [_level_day(r._mapping) for r in rows]
        if model == SUM_OF_PRODUCTS:
            intervals = CATEGORY_INTERVALS
    else:  # a category as its products' sum
        rows = await session.execute(
            text(reads.CATEGORY_ITEMS), {"run_id": m["run_id"], "category": key}
        )
        items = [_level_day({**r._mapping, "unallocated": 0.0}) for r in rows]
        model, intervals = SUM_OF_PRODUCTS, CATEGORY_INTERVALS
    return _answer(
        LevelForecast,
        m,
        level=level,
        category=key if level == "category" else None,
        model=model,
        intervals=intervals,
        items=items,
    )


async def accuracy(*, session: AsyncSession) -> AccuracyPage:
    """The served run's pooled backtest figures per model."""
    row = (await session.execute(text(reads.SERVED_RUN))).first()
    if row is None:
        return AccuracyPage(run_id=None, items=[])
    run = run_of(row)
    return AccuracyPage(run_id=run.run_id, items=run.accuracy)


async def products(*, session: AsyncSession) -> ForecastProductPage:
    """The products the served run forecast, with their model (the dashboard's picker)."""
    row = (await session.execute(text(reads.SERVED_RUN))).first()
    if row is None:
        return ForecastProductPage(run_id=None, items=[])
    run_id = row._mapping["run_id"]
    rows = await session.execute(text(reads.RUN_PRODUCTS), {"run_id": run_id})
    items = [
        ForecastProductItem(
            product_id=r.code or r.product_id,
            product_name=r.product_name,
            category=r.category,
            model=r.model,
            mase=r.mase,
            seasonal_naive_mase=r.seasonal_naive_mase,
        )
        for r in rows
    ]
    return ForecastProductPage(run_id=run_id, items=items)


async def categories(*, session: AsyncSession) -> ForecastCategoryPage:
    """The served run's categories, the most units expected first (the dashboard's
    category view)."""
    row = (await session.execute(text(reads.SERVED_RUN))).first()
    if row is None:
        return ForecastCategoryPage(run_id=None, items=[])
    rows = await session.execute(text(reads.RUN_CATEGORIES))
    return ForecastCategoryPage(
        run_id=row._mapping["run_id"],
        items=[ForecastCategoryItem(**r._mapping) for r in rows],
    )


async def recent_units(
    *, session: AsyncSession, product_id: int, until: dt.date, days: int
) -> list[tuple[dt.date, float]]:
    """A product's (by its key: `ProductRef.key`) units on each of the `days` days up to
    `until`, zero-filled from its first sale as its series is (the dashboard's forecast
    chart)."""
    rows = (
        await session.execute(
            text(reads.PRODUCT_HISTORY),
            {"product_id": product_id, "until": until, "days": days},
        )
    ).all()
    return _zero_filled(rows, until=until, days=days)


async def level_units(
    *, session: AsyncSession, category: str | None, until: dt.date, days: int
) -> list[tuple[dt.date, float]]:
    """The total's (`category` None) or a category's units on each of the `days` days up
    to `until`, zero-filled from the first sale of any product as the level's series is
    (the dashboard's forecast chart)."""
    if category is None:
        statement, params = reads.TOTAL_HISTORY, {"until": until, "days": days}
    else:
        statement = reads.CATEGORY_HISTORY
        params = {"category": category, "until": until, "days": days}
    rows = (await session.execute(text(statement), params)).all()
    return _zero_filled(rows, until=until, days=days)


async def product_history(*, session: AsyncSession, ref: ProductRef, days: int) -> SalesHistory:
    """A product's units sold on each of the last `days` days the served run read; 404
    `no_forecast` as its forecast."""
    found = await _product_run(session, ref)
    until = found["data_until"]
    sold = (
        await recent_units(session=session, product_id=ref.key, until=until, days=days)
        if until
        else []
    )
    return _history(found["run_id"], until, sold)


async def level_history(*, session: AsyncSession, category: str | None, days: int) -> SalesHistory:
    """The total's (`category` None) or a category's units sold on each of the last
    `days` days the served run read; 404 `no_forecast` as its forecast."""
    found = await _level_run(session, "total" if category is None else "category", category or "")
    until = found["data_until"]
    sold = (
        await level_units(session=session, category=category, until=until, days=days)
        if until
        else []
    )
    return _history(found["run_id"], until, sold)


def _history(
    run_id: int, data_until: dt.date | None, sold: list[tuple[dt.date, float]]
) -> SalesHistory:
    return SalesHistory(
        run_id=run_id,
        data_until=data_until,
        items=[SoldDay(date=day, quantity=quantity) for day, quantity in sold],
    )


def _zero_filled(
    rows: Sequence[Row[Any]], *, until: dt.date, days: int
) -> list[tuple[dt.date, float]]:
    """Sale days (created_date, quantity, first_sale) as every day from the later of the
    first sale and `days` days before `until`, to `until`."""
    sold = {r.created_date: float(r.quantity) for r in rows}
    start = until - dt.timedelta(days=days - 1)
    if rows:
        start = max(start, rows[0].first_sale)
    span = (start + dt.timedelta(days=i) for i in range((until - start).days + 1))
    return [(d, sold.get(d, 0.0)) for d in span]
