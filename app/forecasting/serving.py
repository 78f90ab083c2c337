"""What each product is served: the chosen model's forecast with conformal intervals,
corrected for regression to the mean; short products' pace in their category's shape.

`serve` takes each backtested product's chosen model's forecast, with intervals from the
backtest's absolute errors (`selection`); `regression_factors` measures, per band of
recent units, how far the backtest's forecasts ran from what sold, and `regressed`
applies them. A product with under two horizons of history gets its pace so far times
the keep ratio of its age (`keep_ratios`), in its category's shape (`category_profile`),
with Poisson intervals. Every forecast keeps `0 ≤ lo_95 ≤ lo_80 ≤ quantity ≤ hi_80 ≤
hi_95` (`_bounded`).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from app.forecasting.series import MIN_HISTORY_DAYS, SEASON, History

CATEGORY_PROFILE = "category_profile"


def serve(
    final: pd.DataFrame | None,
    chosen: pd.Series,
    per_model: pd.DataFrame | None,
    backtest: pd.DataFrame | None,
    data_until: date | None,
    horizon: int,
) -> pd.DataFrame:
    """Each backtested product's chosen model's forecast, with conformal intervals."""
    if final is None or chosen.empty or per_model is None:
        return empty_predictions()
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


def regressed(
    served: pd.DataFrame, factors: np.ndarray, series: pd.DataFrame, data_until: date
) -> pd.DataFrame:
    """`served` (points and bounds) times its product's band's factor."""
    units = _recent_units(series, pd.Timestamp(data_until))
    f = factors[_band(units, served["product_id"])]
    out = served.copy()
    for column in ("quantity", "lo_80", "hi_80", "lo_95", "hi_95"):
        out[column] = out[column].to_numpy() * f
    return out


def category_profile(
    series: pd.DataFrame,
    short_ids: pd.Index,
    served: pd.DataFrame,
    history: History,
    horizon: int,
) -> pd.DataFrame:
    """Short products: their category's forecast shape (its served total, divided by its
    mean) times the product's own mean daily units; Poisson intervals around it."""
    if not len(short_ids):
        return empty_predictions()
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


def empty_predictions() -> pd.DataFrame:
    return pd.DataFrame(
        columns=["product_id", "date", "quantity", "lo_80", "hi_80", "lo_95", "hi_95", "model"]
    )
