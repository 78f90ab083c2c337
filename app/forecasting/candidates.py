"""The candidate models and their fits: each product's next `horizon` days from every
candidate, on the history a window (or the final fit) gives it.

The statistical models (`STAT_MODELS`, statsforecast: in the process, or on a Dask
cluster through its fugue backend), one global LightGBM across the products
(mlforecast, on the best sellers a time budget holds: `lightgbm_head`), and the
Ensemble (LightGBM's mean with two unlike statistical models). statsforecast,
mlforecast, LightGBM and Dask are imported here only, when a fit starts.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

from app.forecasting import calendar
from app.forecasting.options import Options
from app.forecasting.series import MAX_WINDOWS, MIN_HISTORY_DAYS, SEASON

SEASONAL_NAIVE = "SeasonalNaive"
LIGHTGBM = "LightGBM"
# The mean of three unlike candidates: a global learner, a level and an intermittent one.
ENSEMBLE = "Ensemble"
ENSEMBLE_OF = (LIGHTGBM, "WindowAverage", "ADIDA")
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
# LightGBM's features are complete from a series' 29th day; it is fitted only with at
# least this many complete rows across all series (two of its smallest leaves).
LIGHTGBM_WARMUP = 28
MIN_LIGHTGBM_ROWS = 100


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


def static_features(products: pd.DataFrame, ids: pd.Index) -> pd.DataFrame:
    """unique_id, category, price: what LightGBM knows of the products `ids` besides
    their series."""
    frame = products.rename(columns={"product_id": "unique_id"})
    frame = frame[frame["unique_id"].isin(ids)].copy()
    frame["category"] = frame["category"].astype("category")
    frame["price"] = frame["price"].astype(np.float64)
    return frame[["unique_id", "category", "price"]]


def predict_all(
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


def lightgbm_head(
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
