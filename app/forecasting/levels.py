"""The total and each category, forecast from their own series and reconciled.

A category's series holds every unit its products sold, new products' included, so its
forecast sees demand that no product forecast can (a product that has not sold yet has
none). Per series, the candidates (`LEVEL_MODELS`: four statsforecast models and the
mean of three of them) are backtested on the same rolling
origins as the products; the lowest RMSSE wins if it beats seasonal naive's there. The
total and the categories are then made to agree: each reconciliation of
hierarchicalforecast (`RECONCILERS`) is applied to the backtest's forecasts, and the one
with the lowest mean RMSSE over every level series is applied to the forecast. The
intervals are conformal, from the reconciled backtest's errors of each series.

The products are made to fit under their category: where a category's products sum to
more than the category's forecast on a day, their forecasts (and bounds) are scaled down
to it; what the category expects beyond its products is its `unallocated`, demand from
products without a forecast of their own (not sold yet, or not in the run).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from app.forecasting import conformal

TOTAL = "total"
CATEGORY = "category"
SEASONAL_NAIVE = "SeasonalNaive"
SUM_OF_PRODUCTS = "sum_of_products"
STAT_MODELS = (SEASONAL_NAIVE, "WindowAverage", "SeasonalWindowAverage", "AutoETS")
# The mean of the three that are not seasonal naive: unlike errors partly cancel.
LEVEL_ENSEMBLE = "Ensemble"
LEVEL_MODELS = (*STAT_MODELS, LEVEL_ENSEMBLE)
RECONCILERS = ("BottomUp", "TopDown", "MinTrace(ols)", "MinTrace(wls_struct)")
SEASON = 7
LEVELS = (80, 95)
PREFIX = "category:"  # a category's series id, in front of its name
BOUNDS = ("lo_80", "hi_80", "lo_95", "hi_95")


@dataclass
class Levels:
    """The total's and the categories' forecasts, the products fitted under them, and
    the per-level backtest figures."""

    # level, key ('' for the total), date, quantity, lo_80, hi_80, lo_95, hi_95,
    # unallocated, model
    predictions: pd.DataFrame
    # The product predictions, scaled where they summed to more than their category.
    products: pd.DataFrame
    accuracy: list[dict[str, Any]]


def level_series(cells: pd.DataFrame, products: pd.DataFrame, until: date) -> pd.DataFrame:
    """unique_id (`total`, `category:<name>`), ds, y: units per day, every series from
    the first sale of any product to `until` (a category that started later has zeros
    before: it sold nothing then), so that all share the backtest's origins."""
    category = products.set_index("product_id")["category"].astype(str)
    frame = pd.DataFrame(
        {
            "category": category.reindex(cells["product_id"]).fillna("").to_numpy(),
            "ds": pd.to_datetime(cells["date"]),
            "y": cells["quantity"].to_numpy(dtype=np.float64),
        }
    )
    days = pd.date_range(frame["ds"].min(), pd.Timestamp(until), freq="D")
    by_category = frame.pivot_table(index="ds", columns="category", values="y", aggfunc="sum")
    by_category = by_category.reindex(days).fillna(0.0)
    wide = by_category.rename(columns=lambda c: f"{PREFIX}{c}")
    wide.insert(0, TOTAL, by_category.sum(axis=1))
    long = wide.reset_index(names="ds").melt(id_vars="ds", var_name="unique_id", value_name="y")
    return long[["unique_id", "ds", "y"]]


def _models() -> list[Any]:
    from statsforecast.models import AutoETS, SeasonalNaive, SeasonalWindowAverage, WindowAverage

    return [
        SeasonalNaive(season_length=SEASON, alias=STAT_MODELS[0]),
        WindowAverage(window_size=28, alias=STAT_MODELS[1]),
        SeasonalWindowAverage(season_length=SEASON, window_size=4, alias=STAT_MODELS[2]),
        # No trend search (ten times the time, for no better figures on the benchmark);
        # the season is searched, so that a short series can go without one.
        AutoETS(season_length=SEASON, model="ZNZ", alias=STAT_MODELS[3]),
    ]


def _base(train: pd.DataFrame, horizon: int) -> pd.DataFrame:
    from statsforecast import StatsForecast
    from statsforecast.models import SeasonalNaive

    # A model that cannot fit a series (AutoETS on a few days) gives way to seasonal naive
    # there, instead of failing the run.
    sf = StatsForecast(
        models=_models(),
        freq="D",
        n_jobs=1,
        fallback_model=SeasonalNaive(season_length=SEASON),
    )
    out: pd.DataFrame = sf.forecast(df=train, h=horizon)
    for model in STAT_MODELS:
        out[model] = out[model].clip(lower=0)
    out[LEVEL_ENSEMBLE] = out[list(STAT_MODELS[1:])].mean(axis=1)
    return out


def _tags(ids: list[str]) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """hierarchicalforecast's summing matrix and tags: the total over the categories."""
    categories = [i for i in ids if i != TOTAL]
    matrix = np.vstack([np.ones(len(categories)), np.eye(len(categories))])
    s_df = pd.DataFrame(matrix, columns=categories)
    s_df.insert(0, "unique_id", [TOTAL, *categories])
    tags = {TOTAL: np.array([TOTAL]), f"{TOTAL}/{CATEGORY}": np.array(categories)}
    return s_df, tags


def _reconcile(base: pd.DataFrame, chosen: pd.Series, ids: list[str]) -> pd.DataFrame:
    """unique_id, ds, one column per reconciler: the chosen base forecasts reconciled."""
    from hierarchicalforecast.core import HierarchicalReconciliation
    from hierarchicalforecast.methods import BottomUp, MinTrace, TopDown

    picked = base.melt(id_vars=["unique_id", "ds"], var_name="model", value_name="yhat")
    picked = picked[picked["model"] == chosen.reindex(picked["unique_id"]).to_numpy()]
    frame = picked[["unique_id", "ds", "yhat"]].rename(columns={"yhat": "base"})
    if len(ids) == 1:  # no category: the total alone, nothing to reconcile
        return frame.assign(**dict.fromkeys(RECONCILERS, frame["base"])).drop(columns="base")
    s_df, tags = _tags(ids)
    methods = [
        BottomUp(),
        TopDown(method="forecast_proportions"),
        MinTrace(method="ols"),
        MinTrace(method="wls_struct"),
    ]
    out = HierarchicalReconciliation(reconcilers=methods).reconcile(
        Y_hat_df=frame, S_df=s_df, tags=tags
    )
    names = {c: c.removeprefix("base/") for c in out.columns if c.startswith("base/")}
    renamed = out.rename(columns=names)
    # The reconcilers' own names (`MinTrace_method-ols`), as RECONCILERS spells them.
    by_order = [c for c in renamed.columns if c not in {"unique_id", "ds", "base"}]
    renamed = renamed.rename(columns=dict(zip(by_order, RECONCILERS, strict=True)))
    for name in RECONCILERS:
        renamed[name] = renamed[name].clip(lower=0)
    return pd.DataFrame(renamed[["unique_id", "ds", *RECONCILERS]])


def _scale(train: pd.DataFrame) -> pd.DataFrame:
    """Per series, seasonal naive's in-sample mean squared error (`mse`, RMSSE's
    denominator) and mean absolute error (`mae`, MASE's)."""
    diff = train.groupby("unique_id")["y"].diff(SEASON)
    by = train["unique_id"]
    return pd.DataFrame({"mse": (diff**2).groupby(by).mean(), "mae": diff.abs().groupby(by).mean()})


def _rmsse(frame: pd.DataFrame, column: str, scale: pd.DataFrame) -> pd.Series:
    sq = (frame["y"] - frame[column]) ** 2
    mse = sq.groupby(frame["unique_id"]).mean()
    s = scale["mse"].reindex(mse.index)
    return pd.Series(np.sqrt(mse / s.where(s > 0)), index=mse.index)


def forecast_levels(
    history: Any,
    product_predictions: pd.DataFrame,
    *,
    horizon: int,
    windows: int,
    timed: Callable[[str], Any],
) -> Levels:
    """The module docstring's steps, on the run's `history` (series.History: its cells,
    products and data_until). `windows` backtest origins (0: the levels are the sums of
    the products, with no figures); `timed(name)` is the run's clock."""
    cells, products = history.cells, history.products
    data_until: date = history.data_until
    series = level_series(cells, products, data_until)
    ids = sorted(series["unique_id"].unique(), key=lambda i: (i != TOTAL, i))
    if windows == 0:
        return _summed(product_predictions, products)
    backtest = _backtest(series, pd.Timestamp(data_until), horizon, windows, timed)
    # Each reconciler on the backtest; the lowest mean RMSSE over every series wins.
    with timed("levels: reconciliation"):
        reconciled = pd.concat(
            [
                actual.merge(_reconcile(base, backtest.chosen, ids), on=["unique_id", "ds"]).assign(
                    window=k
                )
                for k, actual, base in backtest.windows
            ]
        )
    score = {name: float(_rmsse(reconciled, name, backtest.scale).mean()) for name in RECONCILERS}
    method = min(RECONCILERS, key=lambda n: math.inf if math.isnan(score[n]) else score[n])
    with timed("levels: models"):
        final = _base(series, horizon)
    with timed("levels: reconciliation"):
        served = _reconcile(final, backtest.chosen, ids)[["unique_id", "ds", method]]
    served = _with_intervals(served.rename(columns={method: "quantity"}), reconciled, method)
    served["model"] = backtest.chosen.reindex(served["unique_id"]).astype(str).to_numpy()
    served["model"] = served["model"] + "+" + method
    fitted, predictions = _fit_products(served, product_predictions, products)
    accuracy = _accuracy(backtest.frame, reconciled, backtest.chosen, method, backtest.scale)
    return Levels(predictions, fitted, accuracy)


@dataclass(frozen=True)
class _Backtest:
    """The level series' backtest: each window's (k, actual units, base forecasts), all
    of them as one frame, seasonal naive's in-sample scale, and the model per series."""

    windows: list[tuple[int, pd.DataFrame, pd.DataFrame]]
    frame: pd.DataFrame
    scale: pd.DataFrame
    chosen: pd.Series


def _backtest(
    series: pd.DataFrame,
    until: pd.Timestamp,
    horizon: int,
    windows: int,
    timed: Callable[[str], Any],
) -> _Backtest:
    """Every level model on `windows` rolling origins, and the model chosen per series."""
    parts = []
    for k in range(1, windows + 1):
        cutoff = until - pd.Timedelta(days=k * horizon)
        train = series[series["ds"] <= cutoff]
        actual = series[
            (series["ds"] > cutoff) & (series["ds"] <= cutoff + pd.Timedelta(days=horizon))
        ]
        with timed("levels: models"):
            base = _base(train, horizon)
        parts.append((k, actual, base))
    scale = _scale(series[series["ds"] <= until - pd.Timedelta(days=windows * horizon)])
    # Per series, the model with the lowest backtest RMSSE if it beats seasonal naive's.
    # (Chosen per level instead, by the mean over its series, the categories' MAE on the
    # marketplace benchmark was 0.7% worse: benchmarks/RESULTS.md, issue 26.)
    backtest = pd.concat(
        [actual.merge(base, on=["unique_id", "ds"]).assign(window=k) for k, actual, base in parts]
    )
    rmsse = pd.DataFrame({m: _rmsse(backtest, m, scale) for m in LEVEL_MODELS}).fillna(np.inf)
    best = rmsse.idxmin(axis=1)
    beats = rmsse.min(axis=1) < rmsse[SEASONAL_NAIVE]
    return _Backtest(parts, backtest, scale, best.where(beats, SEASONAL_NAIVE))


def _with_intervals(served: pd.DataFrame, reconciled: pd.DataFrame, method: str) -> pd.DataFrame:
    """`served` with conformal intervals: the quantiles of each series' absolute errors
    in the backtest reconciled by `method`, around its forecast, floored at 0."""
    errors = reconciled.assign(err=(reconciled["y"] - reconciled[method]).abs())
    widths = conformal.widths(errors)
    q = served["quantity"].to_numpy()
    w80 = widths[80].reindex(served["unique_id"]).fillna(0).to_numpy()
    w95 = np.maximum(widths[95].reindex(served["unique_id"]).fillna(0).to_numpy(), w80)
    served["lo_80"], served["hi_80"] = np.maximum(q - w80, 0), q + w80
    served["lo_95"], served["hi_95"] = np.maximum(q - w95, 0), q + w95
    return served


def _fit_products(
    levels: pd.DataFrame, product_predictions: pd.DataFrame, products: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Products scaled to fit under their category's forecast per day; the categories'
    `unallocated` (never below 0), and the total as the sum of the categories."""
    category = products.set_index("product_id")["category"].astype(str)
    preds = product_predictions.copy()
    preds["unique_id"] = PREFIX + category.reindex(preds["product_id"]).fillna("").to_numpy()
    preds["ds"] = pd.to_datetime(preds["date"])
    sums = preds.groupby(["unique_id", "ds"])["quantity"].sum().rename("products")
    cats = levels[levels["unique_id"] != TOTAL].merge(
        sums.reset_index(), on=["unique_id", "ds"], how="left"
    )
    cats["products"] = cats["products"].fillna(0.0)
    over = cats["products"] > cats["quantity"]
    factor = np.where(over, cats["quantity"] / cats["products"].where(over, 1.0), 1.0)
    cats["factor"] = factor
    cats["products"] = cats["products"] * factor
    cats["unallocated"] = (cats["quantity"] - cats["products"]).clip(lower=0)
    scaled = preds.merge(cats[["unique_id", "ds", "factor"]], on=["unique_id", "ds"], how="left")
    f = scaled["factor"].fillna(1.0).to_numpy()
    for column in ("quantity", *BOUNDS):
        scaled[column] = scaled[column].to_numpy() * f
    total = levels[levels["unique_id"] == TOTAL].assign(unallocated=np.nan)
    if len(total):
        total = total.set_index("ds")
        summed = cats.groupby("ds")[["quantity", "unallocated"]].sum()
        total["quantity"] = summed["quantity"].reindex(total.index).fillna(total["quantity"])
        total["unallocated"] = summed["unallocated"].reindex(total.index).fillna(0.0)
        total = total.reset_index()
    out = pd.concat([total, cats[total.columns]], ignore_index=True)
    out["level"] = np.where(out["unique_id"] == TOTAL, TOTAL, CATEGORY)
    out["key"] = out["unique_id"].str.removeprefix(PREFIX).where(out["unique_id"] != TOTAL, "")
    out["date"] = out["ds"].dt.date
    q = out["quantity"].to_numpy()
    out["lo_80"] = np.minimum(out["lo_80"], q)
    out["lo_95"] = np.minimum(out["lo_95"], out["lo_80"])
    out["hi_80"] = np.maximum(out["hi_80"], q)
    out["hi_95"] = np.maximum(out["hi_95"], out["hi_80"])
    columns = ["level", "key", "date", "quantity", *BOUNDS, "unallocated", "model"]
    return scaled[product_predictions.columns], out[columns]


def _summed(product_predictions: pd.DataFrame, products: pd.DataFrame) -> Levels:
    """Too short a history for a backtest: each level is the sum of its products (the
    bounds by independent errors: the square root of the summed squared half-widths)."""
    category = products.set_index("product_id")["category"].astype(str)
    preds = product_predictions.copy()
    preds["key"] = category.reindex(preds["product_id"]).fillna("").to_numpy()
    rows = []
    for level, keys in ((TOTAL, None), (CATEGORY, "key")):
        by = ["date"] if keys is None else ["key", "date"]
        g = preds.groupby(by)
        frame = g["quantity"].sum().reset_index()
        for lo, hi in (("lo_80", "hi_80"), ("lo_95", "hi_95")):
            keys_of = [preds[c] for c in by]
            up = ((preds[hi] - preds["quantity"]) ** 2).groupby(keys_of).sum().to_numpy()
            down = ((preds["quantity"] - preds[lo]) ** 2).groupby(keys_of).sum().to_numpy()
            frame[hi] = frame["quantity"].to_numpy() + np.sqrt(up)
            frame[lo] = np.maximum(frame["quantity"].to_numpy() - np.sqrt(down), 0)
        frame["level"] = level
        if keys is None:
            frame["key"] = ""
        rows.append(frame)
    out = pd.concat(rows, ignore_index=True)  # two levels: never empty of frames
    out["unallocated"] = 0.0
    out["model"] = SUM_OF_PRODUCTS
    columns = ["level", "key", "date", "quantity", *BOUNDS, "unallocated", "model"]
    return Levels(
        out[columns] if len(out) else pd.DataFrame(columns=columns), product_predictions, []
    )


def _accuracy(
    backtest: pd.DataFrame,
    reconciled: pd.DataFrame,
    chosen: pd.Series,
    method: str,
    scale: pd.DataFrame,
) -> list[dict[str, Any]]:
    """Per level: the served forecasts (reconciled, with held-out conformal coverage)
    and each candidate model on its own (scope `all`)."""
    items = []
    for level in (TOTAL, CATEGORY):
        mine = (backtest["unique_id"] == TOTAL) == (level == TOTAL)
        rec_mine = (reconciled["unique_id"] == TOTAL) == (level == TOTAL)
        served = reconciled[rec_mine].rename(columns={method: "yhat"})
        items.append(
            _figures(level, f"{_label(chosen, level)}+{method}", "served", served, scale, True)
        )
        for model in LEVEL_MODELS:
            frame = backtest[mine].rename(columns={model: "yhat"})
            items.append(_figures(level, model, "all", frame, scale, False))
    return items


def _label(chosen: pd.Series, level: str) -> str:
    picks = chosen[(chosen.index == TOTAL) == (level == TOTAL)]
    counts = picks.value_counts()
    return str(counts.index[0]) if len(counts) == 1 else "per series"


def _figures(
    level: str, model: str, scope: str, frame: pd.DataFrame, scale: pd.DataFrame, intervals: bool
) -> dict[str, Any]:
    """MAE, RMSSE, MASE (means over series), bias (summed forecast over summed actual,
    minus 1), and for served forecasts the coverage of intervals calibrated on the other
    windows, over all days and over days with sales."""
    err = frame["y"] - frame["yhat"]
    g = err.abs().groupby(frame["unique_id"])
    mae = g.mean()
    s = scale.reindex(mae.index)
    rmsse = np.sqrt((err**2).groupby(frame["unique_id"]).mean() / s["mse"].where(s["mse"] > 0))
    mase = mae / s["mae"].where(s["mae"] > 0)
    total_y = float(frame["y"].sum())
    bias = float(frame["yhat"].sum()) / total_y - 1 if total_y > 0 else None
    out: dict[str, Any] = {
        "level": level,
        "model": model,
        "scope": scope,
        "series": int(mae.size),
        "mae": _mean(mae),
        "rmsse": _mean(rmsse),
        "mase": _mean(mase),
        "bias": bias,
        "coverage_80": None,
        "coverage_95": None,
        "coverage_80_sales_days": None,
    }
    if intervals and "window" in frame:
        hits = conformal.held_out_hits(frame.assign(err=err.abs()))
        out["coverage_80"] = _mean(hits["in_80"])
        out["coverage_95"] = _mean(hits["in_95"])
        out["coverage_80_sales_days"] = _mean(hits.loc[hits["y"] > 0, "in_80"])
    return out


def _mean(values: Any) -> float | None:
    series = pd.Series(values, dtype="float64").replace([np.inf, -np.inf], np.nan)
    value = float(series.mean(skipna=True)) if len(series) else math.nan
    return None if math.isnan(value) else value
