"""Forecast accuracy per level (product, category, total) on a marketplace's long tail,
side by side with seasonal naive and a plain statsforecast AutoETS, in one run.

    .venv/bin/python benchmarks/forecast/levels.py [--products 30000] [--days 730] \
        [--horizon 28] [--dir DIR]

1. Generates `data/generate.py --demand marketplace` (74 categories, launches all the
   time, most products selling nothing in a given month) unless `--dir` holds it.
2. Holds out the last `horizon` days. Orderlens' engine (`app.forecasting.engine.run`,
   the code a run executes after reading the rollup) sees the days before, and is timed.
3. Baselines on the same history, each on each level's own series (a category's series
   holds every product's units, new ones included): seasonal naive (lag 7) and
   statsforecast's AutoETS (season 7) with its 80%/95% intervals; for the products, the
   top 200 by units before the cutoff (what a planner watches).
4. Per level and method, over the held-out days: MAE (mean over series), RMSSE (root
   mean squared error over the in-sample seasonal naive's, mean over series), bias (the
   summed forecast over the summed actual, minus 1), coverage of the 80% and 95%
   intervals over all days and over days with sales. For the total, new products'
   demand is in the actuals, as it is in a shop's.

Beside them, not a forecast: each series' own held-out mean on every held-out day (the
best a constant, unbiased forecast could do: the floor of MAE for expected units on
series that sell nothing on most days). Then the new products: those with a short
history (forecast through their category) and those not sold before the cutoff (only
in their category's `unallocated`), forecast against sold.

Prints Markdown tables and the targets of issue 26 beside the figures.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.forecasting import engine as core
from app.forecasting.series import History
from app.forecasting.serving import CATEGORY_PROFILE
from benchmarks.common import ROOT, WORK

TOP_PRODUCTS = 200


def generate(out: Path, products: int, days: int) -> None:
    if (out / "orders.csv").exists():
        return
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, str(ROOT / "data" / "generate.py"), "--demand", "marketplace",
         "--products", str(products), "--days", str(days), "--out", str(out)],
        check=True,
    )  # fmt: skip


def read(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sale cells (product_id, date, quantity per day) and products, as the rollup holds."""
    orders = pd.read_csv(folder / "orders.csv")
    orders["date"] = pd.to_datetime(orders["created_date"].str.strip("'")).dt.date
    cells = pd.DataFrame(orders.groupby(["product_id", "date"], as_index=False)["quantity"].sum())
    products = pd.read_csv(folder / "products.csv").rename(columns={"id": "product_id"})
    return cells, products[["product_id", "category", "price"]]


def level_series(cells: pd.DataFrame, products: pd.DataFrame, until: pd.Timestamp) -> pd.DataFrame:
    """unique_id, ds, y for every category (`category:<name>`) and the total (`total`),
    zero-filled from the first sale to `until`."""
    frame = cells.merge(products[["product_id", "category"]], on="product_id")
    frame["ds"] = pd.to_datetime(frame["date"])
    parts = [
        frame.assign(unique_id="category:" + frame["category"].astype(str)),
        frame.assign(unique_id="total"),
    ]
    both = pd.concat(parts).groupby(["unique_id", "ds"], as_index=False)["quantity"].sum()
    out = []
    for uid, g in both.groupby("unique_id"):
        days = pd.date_range(g["ds"].min(), until, freq="D")
        y = g.set_index("ds")["quantity"].reindex(days, fill_value=0)
        out.append(pd.DataFrame({"unique_id": uid, "ds": days, "y": y.to_numpy(float)}))
    return pd.concat(out, ignore_index=True)


def product_series(cells: pd.DataFrame, ids: list[int], until: pd.Timestamp) -> pd.DataFrame:
    frame = cells[cells["product_id"].isin(ids)].copy()
    frame["ds"] = pd.to_datetime(frame["date"])
    out = []
    for pid, g in frame.groupby("product_id"):
        days = pd.date_range(g["ds"].min(), until, freq="D")
        y = g.set_index("ds")["quantity"].reindex(days, fill_value=0)
        out.append(
            pd.DataFrame({"unique_id": f"product:{pid}", "ds": days, "y": y.to_numpy(float)})
        )
    return pd.concat(out, ignore_index=True)


def baselines(train: pd.DataFrame, horizon: int) -> tuple[pd.DataFrame, float]:
    """Seasonal naive and AutoETS, with their 80%/95% intervals, and AutoETS's seconds."""
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, SeasonalNaive

    sf = StatsForecast(models=[SeasonalNaive(season_length=7)], freq="D", n_jobs=1)
    naive = sf.forecast(df=train, h=horizon, level=[80, 95])
    began_ets = time.perf_counter()
    ets = StatsForecast(models=[AutoETS(season_length=7)], freq="D", n_jobs=1).forecast(
        df=train, h=horizon, level=[80, 95]
    )
    seconds = time.perf_counter() - began_ets
    rows = []
    for name, fc, col in (("seasonal naive", naive, "SeasonalNaive"), ("AutoETS", ets, "AutoETS")):
        rows.append(
            pd.DataFrame(
                {
                    "unique_id": fc["unique_id"],
                    "ds": fc["ds"],
                    "method": name,
                    "quantity": fc[col].clip(lower=0),
                    "lo_80": fc[f"{col}-lo-80"].clip(lower=0),
                    "hi_80": fc[f"{col}-hi-80"],
                    "lo_95": fc[f"{col}-lo-95"].clip(lower=0),
                    "hi_95": fc[f"{col}-hi-95"],
                }
            )
        )
    return pd.concat(rows, ignore_index=True), seconds


def orderlens(result: core.Result, products: pd.DataFrame) -> pd.DataFrame:
    """The engine's forecasts per level: its own category and total series when it has
    them (`Result.levels`), and the sum of product forecasts (what categories were
    before issue 26) beside them."""
    preds = result.predictions.copy()
    preds["ds"] = pd.to_datetime(preds["date"])
    cols = ["quantity", "lo_80", "hi_80", "lo_95", "hi_95"]
    rows = [
        preds.assign(unique_id="product:" + preds["product_id"].astype(str), method="Orderlens")[
            ["unique_id", "ds", "method", *cols]
        ]
    ]
    with_cat = preds.merge(products[["product_id", "category"]], on="product_id")
    summed = with_cat.groupby(["category", "ds"], as_index=False)[cols].sum()
    summed["unique_id"] = "category:" + summed["category"].astype(str)
    total = with_cat.groupby("ds", as_index=False)[cols].sum().assign(unique_id="total")
    rows.append(
        pd.concat([summed, total]).assign(method="sum of products")[
            ["unique_id", "ds", "method", *cols]
        ]
    )
    levels = getattr(result, "levels", None)
    if levels is not None and len(levels):
        own = levels.copy()
        own["ds"] = pd.to_datetime(own["date"])
        own["unique_id"] = np.where(
            own["level"] == "total", "total", "category:" + own["key"].astype(str)
        )
        rows.append(own.assign(method="Orderlens")[["unique_id", "ds", "method", *cols]])
    return pd.concat(rows, ignore_index=True)


def scores(fc: pd.DataFrame, actual: pd.DataFrame, train: pd.DataFrame) -> pd.DataFrame:
    """Per series and method: abs and squared errors, hits, sums (for pooling)."""
    # The seasonal (lag 7) naive's in-sample squared error.
    scale = train.groupby("unique_id")["y"].apply(
        lambda y: (
            float(np.mean((y.to_numpy()[7:] - y.to_numpy()[:-7]) ** 2)) if len(y) > 7 else np.nan
        )
    )
    merged = actual.merge(fc, on=["unique_id", "ds"], how="left")
    for c in ("quantity", "lo_80", "hi_80", "lo_95", "hi_95"):
        merged[c] = merged[c].fillna(0.0)
    merged["err"] = merged["y"] - merged["quantity"]
    merged["in80"] = (merged["y"] >= merged["lo_80"]) & (merged["y"] <= merged["hi_80"])
    merged["in95"] = (merged["y"] >= merged["lo_95"]) & (merged["y"] <= merged["hi_95"])
    merged["sale"] = merged["y"] > 0
    per = merged.groupby(["method", "unique_id"]).agg(
        mae=("err", lambda e: e.abs().mean()),
        mse=("err", lambda e: (e**2).mean()),
        y=("y", "sum"),
        f=("quantity", "sum"),
    )
    per["rmsse"] = np.sqrt(per["mse"] / scale.reindex(per.index.get_level_values(1)).to_numpy())
    pooled = per.groupby("method").agg(
        series=("mae", "size"), mae=("mae", "mean"), y=("y", "sum"), f=("f", "sum")
    )
    pooled["rmsse"] = per["rmsse"].replace([np.inf, -np.inf], np.nan).groupby("method").mean()
    pooled["bias"] = pooled["f"] / pooled["y"] - 1
    cov = merged.groupby("method")[["in80", "in95"]].mean()
    sale = (
        merged[merged["sale"]]
        .groupby("method")[["in80"]]
        .mean()
        .rename(columns={"in80": "in80_sales"})
    )
    return pooled.join(cov).join(sale)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=30_000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--horizon", type=int, default=28)
    parser.add_argument("--dir", type=Path, default=WORK / "levels")
    parser.add_argument("--no-lightgbm", action="store_true")
    args = parser.parse_args()
    folder = args.dir / f"{args.products}x{args.days}"
    generate(folder, args.products, args.days)
    cells, products = read(folder)
    end = pd.Timestamp(max(cells["date"]))
    cutoff = end - pd.Timedelta(days=args.horizon)
    seen = cells[pd.to_datetime(cells["date"]) <= cutoff]
    print(f"{len(products)} products, {cells['quantity'].sum()} units; held out: the"
          f" {args.horizon} days after {cutoff.date()}")  # fmt: skip

    from app.forecasting.options import Options

    history = History(data_until=cutoff.date(), cells=seen, products=products)
    began = time.perf_counter()
    result = core.run(history, horizon=args.horizon, options=Options(lightgbm=not args.no_lightgbm))
    engine_seconds = time.perf_counter() - began
    for a in result.level_accuracy:
        if a["scope"] == "served":
            print(f"served at the {a['level']} level: {a['model']} (backtest MASE {a['mase']:.3f},"
                  f" bias {a['bias']:+.1%}, 80% coverage {a['coverage_80']:.1%})")  # fmt: skip
    if result.levels is not None:
        chosen = result.levels.drop_duplicates(["level", "key"])["model"].value_counts()
        print(f"level models: {chosen.to_dict()}")
    print(
        f"Orderlens engine: {engine_seconds:.1f} s ({ {k: round(v, 1) for k, v in result.seconds.items()} })"
    )

    top = (
        seen.groupby("product_id")["quantity"].sum().sort_values(ascending=False).head(TOP_PRODUCTS)
    )
    top_ids = [int(i) for i in top.index]
    train_levels = level_series(seen, products, cutoff)
    train_top = product_series(seen, top_ids, cutoff)
    train = pd.concat([train_levels, train_top], ignore_index=True)
    base, ets_seconds = baselines(train, args.horizon)
    print(f"AutoETS on {train['unique_id'].nunique()} series: {ets_seconds:.1f} s")

    whole = level_series(cells, products, end)
    whole_top = product_series(cells, top_ids, end)
    everything = pd.concat([whole, whole_top], ignore_index=True)
    actual = everything[everything["ds"] > cutoff]
    ours = orderlens(result, products)
    # Not a forecast: each series' held-out mean on every held-out day, the best any
    # constant (unbiased) forecast can do; the floor of MAE for a forecast of expected
    # units where most days sell nothing.
    oracle = actual.assign(method="oracle: held-out mean")
    oracle["quantity"] = oracle.groupby("unique_id")["y"].transform("mean")
    for c in ("lo_80", "hi_80", "lo_95", "hi_95"):
        oracle[c] = oracle["quantity"]
    forecasts = pd.concat([base, ours, oracle.drop(columns="y")], ignore_index=True)

    print()
    print(
        "| level | method | series | MAE | × naive | RMSSE | bias | cov. 80 | cov. 95 | cov. 80, sale days |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for level, prefix in (
        ("total", "total"),
        ("category", "category:"),
        (f"top {TOP_PRODUCTS} products", "product:"),
    ):
        ids = actual["unique_id"].str.startswith(prefix)
        act = actual[ids]
        fc = forecasts[forecasts["unique_id"].isin(act["unique_id"].unique())]
        table = scores(fc, act, train[train["unique_id"].isin(act["unique_id"].unique())])
        naive_mae = table.loc["seasonal naive", "mae"]
        for method, row in table.iterrows():
            print(
                f"| {level} | {method} | {int(row['series'])} | {row['mae']:.4f} |"
                f" {row['mae'] / naive_mae:.2f} | {row['rmsse']:.3f} | {row['bias']:+.1%} |"
                f" {row['in80']:.1%} | {row['in95']:.1%} | {row['in80_sales']:.1%} |"
            )
    print()
    # New products: short histories (forecast through their category, item 4) and
    # products not sold before the cutoff (only in their category's `unallocated`).
    held = cells[pd.to_datetime(cells["date"]) > cutoff]
    sold = held.groupby("product_id")["quantity"].sum()
    preds = result.predictions
    short = preds[preds["model"] == CATEGORY_PROFILE]
    short_ids = short["product_id"].unique()
    unseen = sold[~sold.index.isin(seen["product_id"].unique())]
    unallocated = 0.0
    if result.levels is not None and len(result.levels):
        cats = result.levels[result.levels["level"] == "category"]
        unallocated = float(cats["unallocated"].sum())
    print("| products | count | forecast | sold | forecast / sold |")
    print("|---|---|---|---|---|")
    for name, count, f, y in (
        ("short history (category_profile)", len(short_ids), short["quantity"].sum(),
         sold.reindex(short_ids).fillna(0).sum()),
        ("not sold before the cutoff (unallocated)", len(unseen), unallocated, unseen.sum()),
        ("all with a forecast", preds["product_id"].nunique(), preds["quantity"].sum(),
         sold.reindex(preds["product_id"].unique()).fillna(0).sum()),
    ):  # fmt: skip
        print(f"| {name} | {count:,} | {f:,.0f} | {y:,.0f} | {f / y if y else float('nan'):.2f} |")
    print()
    print("Targets (issue 26): categories' MAE <= AutoETS's and <= 0.9x seasonal naive's;"
          " category 80% coverage 70-90%; total bias within +-20%; top 200 products' MAE"
          " <= 0.8x seasonal naive's, their bias within +-25%.")  # fmt: skip


if __name__ == "__main__":
    main()
