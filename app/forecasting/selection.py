"""How each product's model is chosen, from its backtest: the figures per product and
model, the choice, and the accuracy a run reports.

`metrics` scores every candidate on the backtest windows (MAE, RMSE, MASE and RMSSE
against seasonal naive's in-sample errors from `scale`, the summed actuals and forecasts
for the bias, held-out conformal coverage, and the interval half-widths `serving` uses);
`choose` serves the lowest RMSSE where it beats seasonal naive's, and `never_nothing`
keeps a product that sold lately from a forecast of nothing. `product_table` and
`pooled` are the run's per-product and pooled figures.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from app.forecasting import conformal
from app.forecasting.candidates import SEASONAL_NAIVE
from app.forecasting.series import SEASON
from app.forecasting.serving import CATEGORY_PROFILE

LEVELS = conformal.LEVELS
# A product's backtest figures in the run's table (`Result.products`), after its model.
PRODUCT_FIGURES = ("mae", "rmse", "mase", "seasonal_naive_mase", "coverage_80", "coverage_95")


def scale(
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


def metrics(backtest: pd.DataFrame, models: list[str], scale: pd.DataFrame) -> pd.DataFrame:
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


def choose(per_model: pd.DataFrame, ids: pd.Index) -> pd.Series:
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


def never_nothing(
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


def product_table(
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
        for col in PRODUCT_FIGURES:
            out[col] = np.nan
        return out
    picks = chosen.rename("model").reset_index()
    picks.columns = ["unique_id", "model"]
    figures = picks.merge(per_model, on=["unique_id", "model"], how="left")
    naive = per_model[per_model["model"] == SEASONAL_NAIVE].set_index("unique_id")["mase"]
    figures["seasonal_naive_mase"] = naive.reindex(figures["unique_id"]).to_numpy()
    figures = figures.rename(columns={"unique_id": "product_id"})
    cols = ["product_id", "model", *PRODUCT_FIGURES]
    out = base.merge(figures[cols], on="product_id", how="left")
    out.loc[out["product_id"].isin(short_ids), "model"] = CATEGORY_PROFILE
    return out


def pooled(
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


def empty_products() -> pd.DataFrame:
    return pd.DataFrame(
        columns=["product_id", "history_days", "windows", "model", *PRODUCT_FIGURES]
    )
