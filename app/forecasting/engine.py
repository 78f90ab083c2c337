"""The pure core of forecasting: daily series in, backtested forecasts out (no database).

`run(history, horizon=…)` zero-fills each product's daily units from its first sale to
`data_until`, backtests every candidate model on rolling origins (up to 3 windows of the
horizon's length), picks per product the model with the lowest RMSSE if it beats
SeasonalNaive(7) there (else SeasonalNaive), refits on all the history and predicts the
`horizon` days after `data_until`, with conformal intervals from the backtest's errors,
corrected per band of recent units for regression to the mean (`regression_factors`).
Products with under two horizons of history get their pace so far times the keep ratio
of their age (`keep_ratios`), in their category's shape (`category_profile`). The
total and the categories are forecast from their own series (`levels`).
statsforecast, mlforecast and LightGBM are imported here only, when a run starts.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from app.forecasting import calendar, conformal, levels
from app.forecasting.options import Options

SEASONAL_NAIVE = "SeasonalNaive"
LIGHTGBM = "LightGBM"
# The mean of three unlike candidates: a global learner, a level and an intermittent one.
ENSEMBLE = "Ensemble"
ENSEMBLE_OF = (LIGHTGBM, "WindowAverage", "ADIDA")
CATEGORY_PROFILE = "category_profile"
STAT_MODELS = (
    "Naive",
    SEASONAL_NAIVE,
    "WindowAverage",
    "HistoricAverage",
    "CrostonOptimized",
    "ADIDA",
    "IMAPA",
    "TSB",
)
MAX_WINDOWS = 3
SEASON = 7
# Below this many days a series gives seasonal naive and the lags nothing to learn from.
MIN_HISTORY_DAYS = 28
# LightGBM's features are complete from a series' 29th day; it is fitted only with at
# least this many complete rows across all series (two of its smallest leaves).
LIGHTGBM_WARMUP = 28
MIN_LIGHTGBM_ROWS = 100
LEVELS = conformal.LEVELS

# progress(fraction done, stage): the stage in words ("backtest window 2 of 3: 812
# products"), or None to keep the last one.
Progress = Callable[[float, str | None], None]


@dataclass(frozen=True)
class History:
    """What a run reads: sparse sale cells and the products they belong to."""

    data_until: date | None
    # product_id, date, quantity: one row per product and day with sales.
    cells: pd.DataFrame
    # product_id, category, price.
    products: pd.DataFrame


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


def daily_series(history: History) -> pd.DataFrame:
    """unique_id, ds, y: every product's units per day from its first sale to data_until,
    days without sales as 0."""
    cells = history.cells
    if history.data_until is None or cells.empty:
        return pd.DataFrame(
            {
                "unique_id": pd.Series(dtype="int64"),
                "ds": pd.Series(dtype="datetime64[ns]"),
                "y": pd.Series(dtype="float64"),
            }
        )
    until = np.datetime64(history.data_until, "D")
    days = cells["date"].to_numpy(dtype="datetime64[D]")
    ids = cells["product_id"].to_numpy(dtype=np.int64)
    order = np.lexsort((days, ids))
    ids, days = ids[order], days[order]
    qty = cells["quantity"].to_numpy(dtype=np.float64)[order]
    uids, first_at = np.unique(ids, return_index=True)
    starts = days[first_at]
    lengths = (until - starts).astype(np.int64) + 1
    offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    total = int(lengths.sum())
    group = np.repeat(np.arange(len(uids)), lengths)
    within = np.arange(total) - offsets[group]
    y = np.zeros(total)
    pos = np.searchsorted(uids, ids)
    y[offsets[pos] + (days - starts[pos]).astype(np.int64)] = qty
    return pd.DataFrame(
        {
            "unique_id": uids[group],
            "ds": (starts[group] + within).astype("datetime64[ns]"),
            "y": y,
        }
    )


def windows_for(length: int, horizon: int) -> int:
    """Backtest windows a series of `length` days gets: 3, fewer when short, 0 when it is
    shorter than two horizons (or four weeks)."""
    if length < max(2 * horizon, MIN_HISTORY_DAYS):
        return 0
    return min(MAX_WINDOWS, length // horizon - 1)


def run(
    history: History,
    *,
    horizon: int,
    options: Options | None = None,
    progress: Progress | None = None,
) -> Result:
    """Backtest, choose, refit and predict (module docstring)."""
    options = options or Options()
    report = progress or (lambda _fraction, _stage: None)
    clock = Clock()
    series = daily_series(history)
    if series.empty:
        report(1.0, "done: no sales to forecast")
        return Result(_empty_predictions(), _empty_products(), [], clock.seconds)
    lengths = series.groupby("unique_id").size()
    windows = lengths.map(lambda n: windows_for(int(n), horizon))
    long_ids = windows.index[windows > 0]
    long = series[series["unique_id"].isin(long_ids)]
    statics = _statics(history.products, long_ids)
    assert history.data_until is not None
    steps = MAX_WINDOWS + 1
    head = None
    if options.lightgbm and len(long_ids):
        with clock.time(LIGHTGBM):
            head = _lightgbm_head(long, statics, horizon, options.time_budget_seconds)
    cv_parts = []
    for k in range(1, MAX_WINDOWS + 1):
        members = windows.index[windows >= k]
        report((k - 1) / steps, f"backtest window {k} of {MAX_WINDOWS}: {len(members)} products")
        if len(members):
            cutoff = pd.Timestamp(history.data_until) - pd.Timedelta(days=k * horizon)
            part = series[series["unique_id"].isin(members)]
            train = part[part["ds"] <= cutoff]
            actual = part[
                (part["ds"] > cutoff) & (part["ds"] <= cutoff + pd.Timedelta(days=horizon))
            ]
            fc = _predict_all(train, statics, horizon, options, clock, head)
            merged = actual.merge(fc, on=["unique_id", "ds"], how="left")
            merged["window"] = k
            cv_parts.append(merged)
        report(k / steps, None)
    report(MAX_WINDOWS / steps, f"final fit: {len(long_ids)} products")
    final = _predict_all(long, statics, horizon, options, clock, head) if len(long_ids) else None
    models = [*STAT_MODELS, *([LIGHTGBM, ENSEMBLE] if options.lightgbm else [])]
    report(MAX_WINDOWS / steps, f"choosing models: {len(lengths)} products")
    with clock.time("selection"):
        scale = _scale(series, windows, history.data_until, horizon)
        backtest = pd.concat(cv_parts, ignore_index=True) if cv_parts else None
        per_model = _metrics(backtest, models, scale) if backtest is not None else None
        chosen = _choose(per_model, long_ids) if per_model is not None else pd.Series(dtype=str)
        if per_model is not None and final is not None:
            since = pd.Timestamp(history.data_until) - pd.Timedelta(days=max(horizon, 28))
            recent = series[(series["ds"] > since) & (series["y"] > 0)]["unique_id"].unique()
            chosen = _never_nothing(chosen, per_model, final, recent)
        served = _serve(final, chosen, per_model, backtest, history.data_until, horizon)
        if backtest is not None and not served.empty:
            factors = regression_factors(backtest, chosen, series, history.data_until, horizon)
            served = _regressed(served, factors, series, history.data_until)
        short_ids = windows.index[windows == 0]
        profiled = _category_profile(series, short_ids, served, history, horizon)
        # Empty parts left out: their columns would not decide the dtypes (pandas warns).
        parts = [part for part in (served, profiled) if not part.empty] or [served]
        predictions = pd.concat(parts, ignore_index=True)
        table = _product_table(per_model, chosen, lengths, windows, short_ids)
        accuracy = _pooled(per_model, chosen, models)
    span = (history.data_until - min(history.cells["date"])).days + 1
    report(MAX_WINDOWS / steps, "the total and the categories")
    hierarchy = levels.forecast_levels(
        history,
        predictions,
        horizon=horizon,
        windows=windows_for(span, horizon),
        timed=clock.time,
    )
    report(1.0, f"computed: {len(lengths)} products")
    return Result(
        hierarchy.products,
        table,
        accuracy,
        clock.seconds,
        levels=hierarchy.predictions,
        level_accuracy=hierarchy.accuracy,
        lightgbm_products=None if head is None else len(head),
    )


class Clock:
    """Seconds spent per model (or step), summed over the run's fits."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def time(self, name: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - began


def _statics(products: pd.DataFrame, ids: pd.Index) -> pd.DataFrame:
    frame = products.rename(columns={"product_id": "unique_id"})
    frame = frame[frame["unique_id"].isin(ids)].copy()
    frame["category"] = frame["category"].astype("category")
    frame["price"] = frame["price"].astype(np.float64)
    return frame[["unique_id", "category", "price"]]


def _predict_all(
    train: pd.DataFrame,
    statics: pd.DataFrame,
    horizon: int,
    options: Options,
    clock: Clock,
    head: pd.Index | None = None,
) -> pd.DataFrame:
    """Every candidate's `horizon` days after the end of `train`: unique_id, ds, one
    column per model. LightGBM is fitted on the `head` products only (all when None);
    the others have no LightGBM forecast, so it is not their candidate."""
    stat = _stat_forecasts(train, horizon, options, clock)
    if not options.lightgbm:
        return stat
    if head is not None:
        train = train[train["unique_id"].isin(head)]
    if _lightgbm_rows(train) < MIN_LIGHTGBM_ROWS:
        # Too little history for its lags (a short backtest window): no forecast, so
        # LightGBM and the Ensemble are not candidates where this window counts.
        return stat.assign(**{LIGHTGBM: np.nan, ENSEMBLE: np.nan})
    with clock.time(LIGHTGBM):
        ml = _lightgbm_forecast(train, statics, horizon)
    out = stat.merge(ml, on=["unique_id", "ds"], how="left")
    out[ENSEMBLE] = out[list(ENSEMBLE_OF)].mean(axis=1, skipna=False)
    return out


# Rows of the head's first products that time one LightGBM fit, to size the head.
CALIBRATION_ROWS = 20_000


def _lightgbm_head(
    long: pd.DataFrame, statics: pd.DataFrame, horizon: int, budget: float
) -> pd.Index | None:
    """The products LightGBM trains on, so that its fits (one per backtest window and the
    final one) take about `budget` seconds: the best sellers first (the head of the
    catalogue, where a global model has the data to learn), as many as the budget holds
    at the speed of a timed fit on the first of them. None: every product fits."""
    units = long.groupby("unique_id")["y"].sum().sort_values(ascending=False, kind="stable")
    rows = (long.groupby("unique_id").size() - LIGHTGBM_WARMUP).clip(lower=0)
    rows = rows.reindex(units.index)
    total = int(rows.sum())
    fits = MAX_WINDOWS + 1
    cumulative = rows.cumsum().to_numpy()
    sample = units.index[: int(np.searchsorted(cumulative, CALIBRATION_ROWS)) + 1]
    sample_rows = int(rows.loc[sample].sum())
    if sample_rows < MIN_LIGHTGBM_ROWS:
        return None
    began = time.perf_counter()
    _lightgbm_forecast(long[long["unique_id"].isin(sample)], statics, horizon)
    per_row = (time.perf_counter() - began) / sample_rows
    allowed = budget / (fits * per_row)
    if total <= allowed:
        return None
    # The rows of a fit grow less than in proportion past the sample (fixed costs are in
    # the sample's time), so the estimate errs short.
    count = max(int(np.searchsorted(cumulative, allowed, side="right")), len(sample))
    return units.index[:count]


def _lightgbm_rows(train: pd.DataFrame) -> int:
    """Training rows left once every series' first `LIGHTGBM_WARMUP` days, whose lags and
    rolling windows are incomplete, are dropped."""
    lengths = train.groupby("unique_id").size().to_numpy()
    return int(np.maximum(lengths - LIGHTGBM_WARMUP, 0).sum())


def stat_models() -> list[Any]:
    """The statistical candidates, named as statsforecast names them."""
    from statsforecast.models import (
        ADIDA,
        IMAPA,
        TSB,
        CrostonOptimized,
        HistoricAverage,
        Naive,
        SeasonalNaive,
        WindowAverage,
    )

    return [
        Naive(),
        SeasonalNaive(season_length=SEASON),
        WindowAverage(window_size=MIN_HISTORY_DAYS),
        HistoricAverage(),
        CrostonOptimized(),
        ADIDA(),
        IMAPA(),
        TSB(alpha_d=0.2, alpha_p=0.2),
    ]


def _stat_forecasts(
    train: pd.DataFrame, horizon: int, options: Options, clock: Clock
) -> pd.DataFrame:
    from statsforecast import StatsForecast

    if options.engine == "dask":
        with clock.time("statsforecast (dask)"):
            return _dask_forecast(train, horizon, options)
    out: pd.DataFrame | None = None
    for model in stat_models():
        with clock.time(str(model)):
            fc = StatsForecast(models=[model], freq="D", n_jobs=1).forecast(df=train, h=horizon)
        out = fc if out is None else out.merge(fc, on=["unique_id", "ds"])
    assert out is not None
    return out


def _dask_forecast(train: pd.DataFrame, horizon: int, options: Options) -> pd.DataFrame:
    """The statistical models on a Dask cluster, through statsforecast's fugue backend."""
    import dask.dataframe as dd
    from distributed import Client
    from statsforecast import StatsForecast

    with Client(options.dask_address, set_as_default=True):
        frame = train.assign(unique_id=train["unique_id"].astype(str))
        parts = dd.from_pandas(frame, npartitions=max(1, min(8, frame["unique_id"].nunique())))
        sf = StatsForecast(models=stat_models(), freq="D")
        out = sf.forecast(df=parts, h=horizon)
        result = out.compute() if hasattr(out, "compute") else out
    result = pd.DataFrame(result)
    result["unique_id"] = result["unique_id"].astype(np.int64)
    result["ds"] = pd.to_datetime(result["ds"])
    return result.sort_values(["unique_id", "ds"], ignore_index=True)


def _lightgbm_forecast(train: pd.DataFrame, statics: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """One global LightGBM across all products (mlforecast, recursive)."""
    import lightgbm as lgb
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean, RollingStd

    model = lgb.LGBMRegressor(
        n_estimators=150,
        learning_rate=0.05,
        num_leaves=31,
        min_child_samples=50,
        subsample=0.5,
        subsample_freq=1,
        objective="tweedie",
        n_jobs=1,
        verbose=-1,
    )
    # The longest feature (lag 28; lag 1's 28-day window) needs LIGHTGBM_WARMUP days.
    fcst = MLForecast(
        models={LIGHTGBM: model},
        freq="D",
        lags=[1, 7, 14, 28],
        lag_transforms={
            1: [RollingMean(7), RollingStd(7), RollingMean(28), RollingStd(28)],
            7: [RollingMean(4)],
        },
        date_features=["dayofweek", calendar.is_weekend, calendar.is_holiday],
    )
    frame = train.merge(statics, on="unique_id", how="left")
    # A product newer than the longest lag has no LightGBM rows, and nulls in its lags
    # when predicted (LightGBM takes them as missing): mlforecast says both on stderr.
    # Expected on a long tail; such products are served by the other models.
    for expected in ("The following series were dropped completely", "Found null values in"):
        warnings.filterwarnings("ignore", message=expected, category=UserWarning)
    fcst.fit(frame, static_features=["category", "price"], dropna=True)
    out: pd.DataFrame = fcst.predict(horizon)
    out[LIGHTGBM] = out[LIGHTGBM].clip(lower=0)
    return out


def _scale(
    series: pd.DataFrame, windows: pd.Series, data_until: date | None, horizon: int
) -> pd.DataFrame:
    """Per product, the in-sample errors of seasonal naive (lag 7) over the history
    before its first backtest cutoff: mean absolute (`mae`, MASE's denominator) and mean
    squared (`mse`, RMSSE's)."""
    assert data_until is not None
    n = windows.reindex(series["unique_id"]).to_numpy()
    cutoff = np.datetime64(data_until, "D") - (n * horizon).astype("timedelta64[D]")
    inside = series["ds"].to_numpy(dtype="datetime64[D]") <= cutoff
    frame = series[inside]
    diff = frame.groupby("unique_id")["y"].diff(SEASON)
    by = frame["unique_id"]
    return pd.DataFrame({"mae": diff.abs().groupby(by).mean(), "mse": (diff**2).groupby(by).mean()})


def _metrics(backtest: pd.DataFrame, models: list[str], scale: pd.DataFrame) -> pd.DataFrame:
    """Per product and model: mae, rmse, mase, rmsse, the summed actual and forecast
    (sum_y, sum_f: for the pooled bias), coverage_80, coverage_95, coverage_80 over
    days with sales, and the conformal half-widths q_80, q_95 (from all windows'
    absolute errors)."""
    rows = []
    for model in models:
        err = (backtest["y"] - backtest[model]).abs()
        frame = pd.DataFrame(
            {
                "unique_id": backtest["unique_id"],
                "window": backtest["window"],
                "err": err,
                "y": backtest["y"],
                "f": backtest[model],
            }
        )
        g = frame.groupby("unique_id")["err"]
        mse = (frame["err"] ** 2).groupby(frame["unique_id"]).mean()
        stats = pd.DataFrame(
            {
                "mae": g.mean(),
                "rmse": np.sqrt(mse),
                "sum_y": frame.groupby("unique_id")["y"].sum(),
                "sum_f": frame.groupby("unique_id")["f"].sum(),
            }
        )
        sq = scale["mse"].reindex(stats.index)
        stats["rmsse"] = np.sqrt(mse / sq.where(sq > 0))
        widths = conformal.widths(frame)
        hits = conformal.held_out_hits(frame)
        for level in LEVELS:
            stats[f"q_{level}"] = widths[level]
            stats[f"coverage_{level}"] = hits.groupby("unique_id")[f"in_{level}"].mean()
        sales_days = hits[hits["y"] > 0]
        stats["coverage_80_sales_days"] = sales_days.groupby("unique_id")["in_80"].mean()
        # A model that did not forecast every backtest day of a product has no figures
        # there, so it is never chosen on part of the windows.
        stats.loc[err.isna().groupby(frame["unique_id"]).any()] = np.nan
        stats["model"] = model
        rows.append(stats)
    out = pd.concat(rows).reset_index()
    s = scale["mae"].reindex(out["unique_id"]).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["mase"] = np.where(s > 0, out["mae"].to_numpy() / s, np.nan)
    return out


def _choose(per_model: pd.DataFrame, ids: pd.Index) -> pd.Series:
    """Per product, the model served: the lowest backtest RMSSE (RMSE where the scale is
    zero) if it is strictly below SeasonalNaive's, else SeasonalNaive. RMSSE, not MASE:
    an absolute error is smallest at the median, which for a product selling on few days
    is 0, so MASE chose forecasts of nothing (biased low by the units sold); a squared
    error is smallest at the mean, the expected units."""
    frame = _scored(per_model)
    naive = frame[frame["model"] == SEASONAL_NAIVE].set_index("unique_id")["score"]
    best = frame.sort_values(["unique_id", "score", "model"]).drop_duplicates("unique_id")
    best = best.set_index("unique_id")
    beats = best["score"] < naive.reindex(best.index)
    chosen = best["model"].where(beats, SEASONAL_NAIVE)
    return chosen.reindex(ids).fillna(SEASONAL_NAIVE)


def _scored(per_model: pd.DataFrame) -> pd.DataFrame:
    """`per_model` with the `score` a choice ranks by: RMSSE, RMSE where the scale is 0,
    infinite where the model has no figures."""
    score = per_model["rmsse"].where(per_model["rmsse"].notna(), per_model["rmse"])
    return per_model.assign(score=score.fillna(np.inf))


def _never_nothing(
    chosen: pd.Series, per_model: pd.DataFrame, final: pd.DataFrame, recent: Any
) -> pd.Series:
    """A product that sold lately (`recent`) is never served a forecast of nothing: where
    its chosen model forecasts 0 on every day, the best-scoring candidate that forecasts
    something serves instead (seasonal naive repeats an empty last week; a mean-based
    or intermittent model does not)."""
    models = [m for m in per_model["model"].unique() if m in final.columns]
    sums = final.groupby("unique_id")[models].sum().reset_index(names="unique_id")
    # unique_id, model, total: each candidate's forecast summed over the horizon.
    totals = sums.melt(id_vars="unique_id", var_name="model", value_name="total")
    picks = pd.DataFrame({"unique_id": chosen.index, "model": chosen.to_numpy()})
    picked = picks.merge(totals, on=["unique_id", "model"], how="left")
    empty = picked.loc[(picked["total"] == 0) & picked["unique_id"].isin(recent), "unique_id"]
    if not len(empty):
        return chosen
    frame = _scored(per_model)
    frame = frame[frame["unique_id"].isin(empty)]
    frame = frame.merge(totals[totals["total"] > 0], on=["unique_id", "model"])
    best = frame.sort_values(["unique_id", "score", "model"]).drop_duplicates("unique_id")
    out = chosen.copy()
    out.loc[best["unique_id"].to_numpy()] = best["model"].to_numpy()
    return out


def _serve(
    final: pd.DataFrame | None,
    chosen: pd.Series,
    per_model: pd.DataFrame | None,
    backtest: pd.DataFrame | None,
    data_until: date | None,
    horizon: int,
) -> pd.DataFrame:
    """Each backtested product's chosen model's forecast, with conformal intervals."""
    if final is None or chosen.empty or per_model is None:
        return _empty_predictions()
    long = final.melt(id_vars=["unique_id", "ds"], var_name="model", value_name="quantity")
    picks = chosen.rename("model").reset_index()
    picks.columns = ["unique_id", "model"]
    served = long.merge(picks, on=["unique_id", "model"])
    widths = per_model[["unique_id", "model", "q_80", "q_95"]]
    served = served.merge(widths, on=["unique_id", "model"], how="left")
    q = served["quantity"].fillna(0).clip(lower=0).to_numpy()
    w80 = served["q_80"].fillna(0).to_numpy()
    w95 = np.maximum(served["q_95"].fillna(0).to_numpy(), w80)
    return _bounded(
        served["unique_id"].to_numpy(),
        served["ds"].dt.date.to_numpy(),
        q,
        (q - w80, q + w80, q - w95, q + w95),
        served["model"].to_numpy(),
    )


# Bands of units sold in the RECENT_DAYS before a forecast's origin: the products whose
# forecasts are corrected together (0, 1-2, 3-5, 6-10, 11-20, 21-40, 41 and more).
RECENT_EDGES = (1, 3, 6, 11, 21, 41)
RECENT_DAYS = 28


def _recent_units(series: pd.DataFrame, cutoff: pd.Timestamp) -> pd.Series:
    inside = (series["ds"] > cutoff - pd.Timedelta(days=RECENT_DAYS)) & (series["ds"] <= cutoff)
    return series[inside].groupby("unique_id")["y"].sum()


def _band(units: pd.Series, ids: Any) -> np.ndarray:
    sold = units.reindex(ids).fillna(0).to_numpy()
    return np.searchsorted(np.asarray(RECENT_EDGES), sold, side="right")


def regression_factors(
    backtest: pd.DataFrame,
    chosen: pd.Series,
    series: pd.DataFrame,
    data_until: date,
    horizon: int,
) -> np.ndarray:
    """Per band of recent units (RECENT_EDGES), the units its products sold in the
    backtest windows over their served models' forecasts of them. A product that sold
    much lately sells less next (it was partly luck, and launches fade): regression to
    the mean, which a model fitted on one product's past cannot see and the backtest
    measures. Pooled over the models (per model, the ratios of the ones that repeat a
    last value, Naive's and seasonal naive's, swing with it). Shrunk toward 1 by
    KEEP_PRIOR_UNITS. The first band (nothing sold lately) stays 1: its forecasts are
    mostly 0, and a ratio over them is noise."""
    sold = np.zeros(len(RECENT_EDGES) + 1)
    forecast = np.zeros(len(RECENT_EDGES) + 1)
    models = [m for m in chosen.unique() if m in backtest.columns]
    if models:
        column = pd.Index(models).get_indexer(chosen.reindex(backtest["unique_id"]))
        values = backtest[models].to_numpy(dtype=np.float64)
        f = values[np.arange(len(backtest)), np.maximum(column, 0)]
        band = np.zeros(len(backtest), dtype=np.int64)
        for k in backtest["window"].unique():
            rows = backtest["window"].to_numpy() == k
            cutoff = pd.Timestamp(data_until) - pd.Timedelta(days=int(k) * horizon)
            band[rows] = _band(_recent_units(series, cutoff), backtest["unique_id"][rows])
        keep = (column >= 0) & ~np.isnan(f)
        np.add.at(sold, band[keep], backtest["y"].to_numpy(dtype=np.float64)[keep])
        np.add.at(forecast, band[keep], np.maximum(f[keep], 0))
    factors = (sold + KEEP_PRIOR_UNITS) / (forecast + KEEP_PRIOR_UNITS)
    factors[0] = 1.0
    return factors


def _regressed(
    served: pd.DataFrame, factors: np.ndarray, series: pd.DataFrame, data_until: date
) -> pd.DataFrame:
    """`served` (points and bounds) times its product's band's factor."""
    units = _recent_units(series, pd.Timestamp(data_until))
    f = factors[_band(units, served["product_id"])]
    out = served.copy()
    for column in ("quantity", "lo_80", "hi_80", "lo_95", "hi_95"):
        out[column] = out[column].to_numpy() * f
    return out


def _bounded(
    ids: Any, days: Any, q: Any, bounds: tuple[Any, Any, Any, Any], model: Any
) -> pd.DataFrame:
    """Predictions with `0 ≤ lo_95 ≤ lo_80 ≤ quantity ≤ hi_80 ≤ hi_95` made to hold."""
    lo80, hi80, lo95, hi95 = (np.asarray(b, dtype=np.float64) for b in bounds)
    q = np.maximum(np.asarray(q, dtype=np.float64), 0)
    lo80 = np.clip(lo80, 0, q)
    lo95 = np.clip(lo95, 0, lo80)
    hi80 = np.maximum(hi80, q)
    hi95 = np.maximum(hi95, hi80)
    return pd.DataFrame(
        {
            "product_id": np.asarray(ids, dtype=np.int64),
            "date": days,
            "quantity": q,
            "lo_80": lo80,
            "hi_80": hi80,
            "lo_95": lo95,
            "hi_95": hi95,
            "model": model,
        }
    )


def _category_profile(
    series: pd.DataFrame,
    short_ids: pd.Index,
    served: pd.DataFrame,
    history: History,
    horizon: int,
) -> pd.DataFrame:
    """Short products: their category's forecast shape (its served total, divided by its
    mean) times the product's own mean daily units; Poisson intervals around it."""
    if not len(short_ids):
        return _empty_predictions()
    from scipy.stats import poisson

    assert history.data_until is not None
    days = [history.data_until + timedelta(days=i) for i in range(1, horizon + 1)]
    category = history.products.set_index("product_id")["category"]
    shapes: dict[str, np.ndarray] = {}
    if not served.empty:
        totals = served.assign(category=category.reindex(served["product_id"]).to_numpy())
        by_day = totals.pivot_table(
            index="date", columns="category", values="quantity", aggfunc="sum"
        )
        by_day = by_day.reindex(days).fillna(0)
        overall = by_day.sum(axis=1).to_numpy()
        shapes = {str(c): _shape(by_day[c].to_numpy()) for c in by_day.columns}
        shapes[""] = _shape(overall)
    flat = np.ones(horizon)
    short = series[series["unique_id"].isin(short_ids)]
    g = short.groupby("unique_id")["y"]
    pace, days_sold = g.mean(), g.size()
    kept = keep_ratios(series, history.data_until, horizon)
    bucket = np.minimum((days_sold.to_numpy() - 1) // SEASON, len(kept) - 1)
    level = pace * kept[bucket]
    ids = np.repeat(level.index.to_numpy(), horizon)
    q = np.concatenate(
        [level[p] * shapes.get(str(category.get(p, "")), shapes.get("", flat)) for p in level.index]
    )
    bounds = (
        poisson.ppf(0.1, q),
        poisson.ppf(0.9, q),
        poisson.ppf(0.025, q),
        poisson.ppf(0.975, q),
    )
    clean = (
        np.nan_to_num(bounds[0]),
        np.nan_to_num(bounds[1]),
        np.nan_to_num(bounds[2]),
        np.nan_to_num(bounds[3]),
    )
    return _bounded(ids, days * len(level), q, clean, np.full(len(q), CATEGORY_PROFILE))


# Past origins the keep ratios are measured at: weekly, over the last year.
KEEP_ORIGINS = 52
# Units of evidence a keep ratio needs to move far from 1 (a prior of "keeps its pace").
KEEP_PRIOR_UNITS = 10.0


def keep_ratios(series: pd.DataFrame, data_until: date, horizon: int) -> np.ndarray:
    """How much of its pace so far a product keeps over the next `horizon` days, by how
    many weeks it has sold (index 0: its first week), measured on this history: at weekly
    origins over the last year, for every product short at that origin (first sale under
    max(2 horizons, 4 weeks) before it), the units it sold in the `horizon` days after
    the origin over its mean daily units up to it times `horizon`. A new product's early
    pace overstates what follows (launches fade); the ratio says by how much. Shrunk
    toward 1 by KEEP_PRIOR_UNITS: with little evidence, a product keeps its pace."""
    span = max(2 * horizon, MIN_HISTORY_DAYS)
    buckets = -(-span // SEASON)
    sold = np.zeros(buckets)
    paced = np.zeros(buckets)
    if not series.empty:
        ids = series["unique_id"].to_numpy()
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        first = series["ds"].to_numpy(dtype="datetime64[D]")[starts]
        ends = np.r_[starts[1:], len(ids)]
        cum = np.r_[0.0, np.cumsum(series["y"].to_numpy(dtype=np.float64))]
        last = np.datetime64(data_until, "D") - horizon
        for j in range(KEEP_ORIGINS):
            origin = last - j * SEASON
            age = (origin - first).astype(np.int64)  # days before the origin's own
            mine = (age >= 0) & (age < span) & (starts + age + horizon < ends)
            if not mine.any():
                continue
            at = starts[mine] + age[mine]  # the origin's row of each product
            before = cum[at + 1] - cum[starts[mine]]
            after = cum[at + 1 + horizon] - cum[at + 1]
            b = age[mine] // SEASON
            np.add.at(sold, b, after)
            np.add.at(paced, b, before / (age[mine] + 1) * horizon)
    return (sold + KEEP_PRIOR_UNITS) / (paced + KEEP_PRIOR_UNITS)


def _shape(values: np.ndarray) -> np.ndarray:
    mean = float(values.mean()) if len(values) else 0.0
    return values / mean if mean > 0 else np.ones(len(values))


def _product_table(
    per_model: pd.DataFrame | None,
    chosen: pd.Series,
    lengths: pd.Series,
    windows: pd.Series,
    short_ids: pd.Index,
) -> pd.DataFrame:
    """One row per product: its model and that model's backtest figures."""
    base = pd.DataFrame(
        {
            "product_id": lengths.index,
            "history_days": lengths.to_numpy(),
            "windows": windows.to_numpy(),
        }
    )
    if per_model is None or chosen.empty:
        out = base.assign(model=CATEGORY_PROFILE)
        for col in ("mae", "rmse", "mase", "seasonal_naive_mase", "coverage_80", "coverage_95"):
            out[col] = np.nan
        return out
    picks = chosen.rename("model").reset_index()
    picks.columns = ["unique_id", "model"]
    figures = picks.merge(per_model, on=["unique_id", "model"], how="left")
    naive = per_model[per_model["model"] == SEASONAL_NAIVE].set_index("unique_id")["mase"]
    figures["seasonal_naive_mase"] = naive.reindex(figures["unique_id"]).to_numpy()
    figures = figures.rename(columns={"unique_id": "product_id"})
    cols = [
        "product_id",
        "model",
        "mae",
        "rmse",
        "mase",
        "seasonal_naive_mase",
        "coverage_80",
        "coverage_95",
    ]
    out = base.merge(figures[cols], on="product_id", how="left")
    out.loc[out["product_id"].isin(short_ids), "model"] = CATEGORY_PROFILE
    return out


def _pooled(
    per_model: pd.DataFrame | None, chosen: pd.Series, models: list[str]
) -> list[dict[str, Any]]:
    """Mean of per-product figures per model, over the products it serves (`chosen`) and
    over every backtested product (`all`); MASE leaves out products whose scale is 0.
    `served` is the served forecasts' pooled figures, whatever model each product got."""
    if per_model is None:
        return [_figures(SEASONAL_NAIVE, "all", pd.DataFrame(columns=["mae"]))]
    picks = chosen.rename("model").reset_index()
    picks.columns = ["unique_id", "model"]
    served_rows = picks.merge(per_model, on=["unique_id", "model"])
    out = [_figures("served", "chosen", served_rows)]
    for model in models:
        rows = per_model[(per_model["model"] == model) & per_model["mae"].notna()]
        mine = served_rows[served_rows["model"] == model]
        out.append(_figures(model, "chosen", mine))
        out.append(_figures(model, "all", rows))
    return out


def _figures(model: str, scope: str, rows: pd.DataFrame) -> dict[str, Any]:
    def mean(col: str) -> float | None:
        if rows.empty or col not in rows:
            return None
        value = float(rows[col].mean(skipna=True))
        return None if math.isnan(value) else value

    bias = None
    if not rows.empty and "sum_y" in rows:
        actual = float(rows["sum_y"].sum())
        bias = float(rows["sum_f"].sum()) / actual - 1 if actual > 0 else None
    return {
        "level": "product",
        "model": model,
        "scope": scope,
        "series": len(rows),
        "products": len(rows),
        "mae": mean("mae"),
        "rmse": mean("rmse"),
        "rmsse": mean("rmsse"),
        "mase": mean("mase"),
        "bias": bias,
        "coverage_80": mean("coverage_80"),
        "coverage_95": mean("coverage_95"),
        "coverage_80_sales_days": mean("coverage_80_sales_days"),
    }


def _empty_predictions() -> pd.DataFrame:
    return pd.DataFrame(
        columns=["product_id", "date", "quantity", "lo_80", "hi_80", "lo_95", "hi_95", "model"]
    )


def _empty_products() -> pd.DataFrame:
    return pd.DataFrame(
        columns=[
            "product_id", "history_days", "windows", "model", "mae", "rmse", "mase",
            "seasonal_naive_mase", "coverage_80", "coverage_95",
        ]
    )  # fmt: skip
