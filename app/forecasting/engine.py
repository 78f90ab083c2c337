"""The pure core of forecasting: daily series in, backtested forecasts out (no database).

`run(history, horizon=…)` zero-fills each product's daily units from its first sale to
`data_until` (`series`), backtests every candidate model (`candidates`) on rolling origins
(up to 3 windows of the horizon's length), picks per product the model with the lowest
RMSSE if it beats SeasonalNaive(7) there (else SeasonalNaive: `selection`), refits on all
the history and predicts the `horizon` days after `data_until`, with conformal intervals
from the backtest's errors, corrected per band of recent units for regression to the mean
(`serving`). Products with under two horizons of history get their pace so far times the
keep ratio of their age, in their category's shape. The total and the categories are
forecast from their own series (`levels`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd

from app.forecasting import candidates, levels, selection, serving
from app.forecasting.candidates import ENSEMBLE, LIGHTGBM, STAT_MODELS, Clock
from app.forecasting.options import Options
from app.forecasting.series import MAX_WINDOWS, History, daily_series, windows_for

# progress(fraction done, stage): the stage in words ("backtest window 2 of 3: 812
# products"), or None to keep the last one.
Progress = Callable[[float, str | None], None]
# The fraction of a run done once its fits are: each backtest window and the final fit
# are one step each.
FITTED = MAX_WINDOWS / (MAX_WINDOWS + 1)


@dataclass
class Result:
    """A run's output: the served forecasts, per-product accuracy, pooled accuracy."""

    # product_id, date, quantity, lo_80, hi_80, lo_95, hi_95, model
    predictions: pd.DataFrame
    # product_id, model, history_days, windows, mae, rmse, mase, seasonal_naive_mase,
    # coverage_80, coverage_95 (NaN where there was no backtest)
    products: pd.DataFrame
    # model, scope, products, mae, rmse, mase, coverage_80, coverage_95
    accuracy: list[dict[str, Any]]
    seconds: dict[str, float] = field(default_factory=dict)
    # level (total, category), key, date, quantity, lo_80, hi_80, lo_95, hi_95,
    # unallocated, model: the levels' own forecasts, reconciled (app/forecasting/levels.py)
    levels: pd.DataFrame | None = None
    # Per level (total, category): the backtest figures of the served and candidate models
    level_accuracy: list[dict[str, Any]] = field(default_factory=list)
    # Products LightGBM trained on (the head the time budget held); None: all, or none
    lightgbm_products: int | None = None


@dataclass(frozen=True)
class _Work:
    """What every step of a run shares: its history as series, the windows each product
    gets, and how it computes, times and reports."""

    history: History
    data_until: date
    series: pd.DataFrame
    # Per product: days of history, and backtest windows (0: too short, served its
    # category's profile).
    lengths: pd.Series
    windows: pd.Series
    horizon: int
    options: Options
    clock: Clock
    report: Progress


@dataclass(frozen=True)
class _Fits:
    """The candidates' forecasts: each backtest window's (beside what sold) and the
    final fit's (None without a product long enough)."""

    windows: list[pd.DataFrame]
    final: pd.DataFrame | None
    # The products LightGBM trained on (None: all, or none).
    head: pd.Index | None


@dataclass(frozen=True)
class _Served:
    predictions: pd.DataFrame
    table: pd.DataFrame
    accuracy: list[dict[str, Any]]


def run(
    history: History,
    *,
    horizon: int,
    options: Options | None = None,
    progress: Progress | None = None,
) -> Result:
    """Backtest, choose, refit and predict (module docstring)."""
    clock = Clock()
    report = progress or (lambda _fraction, _stage: None)
    series = daily_series(history)
    if series.empty:
        report(1.0, "done: no sales to forecast")
        return Result(serving.empty_predictions(), selection.empty_products(), [], clock.seconds)
    assert history.data_until is not None
    lengths = series.groupby("unique_id").size()
    windows = lengths.map(lambda n: windows_for(int(n), horizon))
    work = _Work(
        history=history,
        data_until=history.data_until,
        series=series,
        lengths=lengths,
        windows=windows,
        horizon=horizon,
        options=options or Options(),
        clock=clock,
        report=report,
    )
    fits = _fit(work)
    report(FITTED, f"choosing models: {len(lengths)} products")
    with clock.time("selection"):
        served = _serve(work, fits)
    span = (history.data_until - min(history.cells["date"])).days + 1
    report(FITTED, "the total and the categories")
    hierarchy = levels.forecast_levels(
        history,
        served.predictions,
        horizon=horizon,
        windows=windows_for(span, horizon),
        timed=clock.time,
    )
    report(1.0, f"computed: {len(lengths)} products")
    return Result(
        hierarchy.products,
        served.table,
        served.accuracy,
        clock.seconds,
        levels=hierarchy.predictions,
        level_accuracy=hierarchy.accuracy,
        lightgbm_products=None if fits.head is None else len(fits.head),
    )


def _fit(work: _Work) -> _Fits:
    """Every candidate's forecasts on each backtest window, then on all the history
    (products with at least one window only); LightGBM on the head its budget holds."""
    windows, options = work.windows, work.options
    long_ids = windows.index[windows > 0]
    long = work.series[work.series["unique_id"].isin(long_ids)]
    statics = candidates.static_features(work.history.products, long_ids)
    head = None
    if options.lightgbm and len(long_ids):
        with work.clock.time(LIGHTGBM):
            head = candidates.lightgbm_head(
                long, statics, work.horizon, options.time_budget_seconds
            )
    parts = []
    for k in range(1, MAX_WINDOWS + 1):
        members = windows.index[windows >= k]
        work.report(
            (k - 1) / (MAX_WINDOWS + 1),
            f"backtest window {k} of {MAX_WINDOWS}: {len(members)} products",
        )
        if len(members):
            parts.append(_backtest_window(work, k, members, statics, head))
        work.report(k / (MAX_WINDOWS + 1), None)
    work.report(FITTED, f"final fit: {len(long_ids)} products")
    final = (
        candidates.predict_all(long, statics, work.horizon, options, work.clock, head)
        if len(long_ids)
        else None
    )
    return _Fits(parts, final, head)


def _backtest_window(
    work: _Work, k: int, members: pd.Index, statics: pd.DataFrame, head: pd.Index | None
) -> pd.DataFrame:
    """Window `k` (its cutoff `k` horizons before data_until): each member's actual units
    over the horizon after the cutoff, beside every candidate's forecast of them from the
    days up to it."""
    cutoff = pd.Timestamp(work.data_until) - pd.Timedelta(days=k * work.horizon)
    part = work.series[work.series["unique_id"].isin(members)]
    train = part[part["ds"] <= cutoff]
    actual = part[(part["ds"] > cutoff) & (part["ds"] <= cutoff + pd.Timedelta(days=work.horizon))]
    fc = candidates.predict_all(train, statics, work.horizon, work.options, work.clock, head)
    merged = actual.merge(fc, on=["unique_id", "ds"], how="left")
    merged["window"] = k
    return merged


def _serve(work: _Work, fits: _Fits) -> _Served:
    """Choose each product's model on the backtest, serve its forecast (regressed to the
    mean where the backtest measured it), the short products their category's profile;
    with the per-product table and the pooled figures."""
    series, windows, horizon = work.series, work.windows, work.horizon
    final = fits.final
    models = [*STAT_MODELS, *([LIGHTGBM, ENSEMBLE] if work.options.lightgbm else [])]
    scale = selection.scale(series, windows, work.data_until, horizon)
    backtest = pd.concat(fits.windows, ignore_index=True) if fits.windows else None
    per_model = selection.metrics(backtest, models, scale) if backtest is not None else None
    long_ids = windows.index[windows > 0]
    chosen = (
        selection.choose(per_model, long_ids) if per_model is not None else pd.Series(dtype=str)
    )
    if per_model is not None and final is not None:
        since = pd.Timestamp(work.data_until) - pd.Timedelta(days=max(horizon, 28))
        recent = series[(series["ds"] > since) & (series["y"] > 0)]["unique_id"].unique()
        chosen = selection.never_nothing(chosen, per_model, final, recent)
    served = serving.serve(final, chosen, per_model, backtest, work.data_until, horizon)
    if backtest is not None and not served.empty:
        factors = serving.regression_factors(backtest, chosen, series, work.data_until, horizon)
        served = serving.regressed(served, factors, series, work.data_until)
    short_ids = windows.index[windows == 0]
    profiled = serving.category_profile(series, short_ids, served, work.history, horizon)
    # Empty parts left out: their columns would not decide the dtypes (pandas warns).
    parts = [part for part in (served, profiled) if not part.empty] or [served]
    return _Served(
        pd.concat(parts, ignore_index=True),
        selection.product_table(per_model, chosen, work.lengths, windows, short_ids),
        selection.pooled(per_model, chosen, models),
    )
