"""What the forecast endpoints answer."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field


class RunRequest(BaseModel):
    """The optional body of `POST /forecasts/runs`."""

    horizon: int = Field(28, ge=1, le=365, description="Days to forecast after data_until.")


class Accuracy(BaseModel):
    """Pooled backtest figures of one model at one level (means of per-series figures)."""

    level: str = Field("product", description="`product`, `category` or `total`")
    model: str = Field(description="As the library names it; `served`: what each product got")
    scope: str = Field(
        description="`served`: what the level serves; `chosen`: the products a model serves;"
        " `all`: every series of the level"
    )
    series: int | None = Field(None, description="Series pooled (products, categories, 1)")
    products: int | None = Field(None, description="Products pooled (product level)")
    mae: float | None
    rmse: float | None = None
    rmsse: float | None = None
    mase: float | None
    bias: float | None = Field(
        None, description="Summed forecast over summed actual, minus 1 (0: unbiased)"
    )
    coverage_80: float | None
    coverage_95: float | None
    coverage_80_sales_days: float | None = Field(
        None, description="80% coverage over backtest days with sales only"
    )


# An accuracy row's columns, in the model's order: `/forecasts/accuracy` as CSV, and the
# table `orderlens forecast` prints.
ACCURACY_COLUMNS = tuple(Accuracy.model_fields)


class AfterToday(BaseModel):
    """Orders dated after the day the run read its data: not demand yet (or a typo)."""

    today: dt.date = Field(description="The database's current date when the run read")
    orders: int
    units: int
    first_date: dt.date | None
    last_date: dt.date | None


class BeforeHistory(BaseModel):
    """Orders older than the run's history (FORECAST_HISTORY_DAYS up to data_until)."""

    history_days: int
    history_from: dt.date | None
    orders: int
    units: int


class LeftOut(BaseModel):
    """Orders the run's series did not hold, counted."""

    after_today: AfterToday
    before_history: BeforeHistory


class Run(BaseModel):
    run_id: int
    status: str = Field(description="running | succeeded | failed")
    started_at: dt.datetime
    finished_at: dt.datetime | None
    data_until: dt.date | None
    horizon: int
    engine: str
    products: int
    progress: float = Field(description="0–1")
    stage: str | None = Field(
        None, description="What the run is doing, e.g. `backtest window 2 of 3: 812 products`"
    )
    accuracy: list[Accuracy]
    models: dict[str, Any] = Field(description="Seconds per model; products each serves")
    error: dict[str, Any] | None
    left_out: LeftOut | None = Field(
        None, description="Orders left out of the series (null until the run has read)"
    )


class ProductAccuracy(BaseModel):
    """The served model's backtest on this product (nulls without a backtest)."""

    mae: float | None
    rmse: float | None
    mase: float | None
    seasonal_naive_mase: float | None
    coverage_80: float | None
    coverage_95: float | None


class ForecastDay(BaseModel):
    date: dt.date
    quantity: float
    lo_80: float
    hi_80: float
    lo_95: float
    hi_95: float


class ProductForecast(BaseModel):
    product_id: int | str = Field(description="As the file wrote it: an integer, or text")
    product_name: str
    category: str
    run_id: int
    model: str = Field(description="Served model; `category_profile` for short histories")
    data_until: dt.date | None
    stale: bool = Field(description="An orders upload changed rows after the run read them")
    accuracy: ProductAccuracy
    items: list[ForecastDay]


class LevelDay(ForecastDay):
    unallocated: float = Field(
        description="Of `quantity`, the units no product's forecast holds: demand expected"
        " from products without a forecast of their own (not sold yet, or launched since)"
    )


class LevelForecast(BaseModel):
    """A category's or the total's own forecast, reconciled with the other levels."""

    level: str = Field(description="`category` or `total`")
    category: str | None = Field(description="The category (null for the total)")
    run_id: int
    data_until: dt.date | None
    stale: bool
    products: int = Field(description="Products with a forecast of their own in it")
    model: str = Field(
        description="The level's model and the reconciliation, e.g. `AutoETS+MinTrace(ols)`;"
        " `sum_of_products` when the history was too short to backtest the level"
    )
    intervals: str = Field(description="How the intervals are made")
    items: list[LevelDay]


class SoldDay(BaseModel):
    date: dt.date
    quantity: float


class SalesHistory(BaseModel):
    """Units sold per day before a forecast: the series it continues."""

    run_id: int
    data_until: dt.date | None = Field(description="The last day the run read")
    items: list[SoldDay] = Field(
        description="Each of the last `days` days up to `data_until`, zero-filled, from the"
        " first sale on"
    )


# The name it had when categories were the sum of their products.
CategoryForecast = LevelForecast


class AccuracyPage(BaseModel):
    run_id: int | None
    items: list[Accuracy]


class ForecastProductItem(BaseModel):
    product_id: int | str = Field(description="As the file wrote it: an integer, or text")
    product_name: str
    category: str
    model: str
    mase: float | None
    seasonal_naive_mase: float | None


class ForecastProductPage(BaseModel):
    run_id: int | None
    items: list[ForecastProductItem]


class ForecastCategoryItem(BaseModel):
    category: str
    model: str = Field(description="As in `GET /forecasts/categories/{category}`")
    quantity: float = Field(description="Units expected over the horizon")
    unallocated: float = Field(description="Of them, from products without a forecast")
    products: int = Field(description="Products with a forecast of their own in it")


class ForecastCategoryPage(BaseModel):
    run_id: int | None
    items: list[ForecastCategoryItem]
