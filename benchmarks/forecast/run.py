"""Forecast benchmark: a full run at 1,000 products × 730 days, its honest holdout
accuracy, the forecast reads, and a plain statsforecast script as the speed baseline.

    .venv/bin/python benchmarks/forecast/run.py [--products 1000] [--days 730] [--horizon 28]

1. Generates the realistic demand (`data/generate.py --demand realistic`), loads it through
   `POST /uploads/*` into an embedded PostgreSQL, then times `POST /forecasts/runs` to
   `succeeded` (backtest, fit, predict, store) with the service's peak memory growth,
   and the seconds per model the run records.
2. p50/p99 of `GET /forecasts/products/{id}` next to `/healthz`, same server, same run.
3. Holdout, in process: the same core fit on history up to `data_until - horizon`, scored
   on the following `horizon` days it never saw: pooled MASE of the served forecasts and
   of SeasonalNaive(7), and the 80%/95% interval coverage.
4. Baseline: what a user would otherwise write: read orders.csv with pandas, sum per
   product and day, zero-fill, `StatsForecast(8 models).cross_validation(h, 3 windows)`
   and `.forecast(h)` (no LightGBM, no storage).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.forecasting import candidates, series
from app.forecasting import engine as core
from benchmarks.common import (
    API_KEY,
    ROOT,
    WORK,
    PeakRss,
    app_server,
    clean_work,
    embedded_server,
    time_endpoint,
    upload,
)


def generate(out: Path, products: int, days: int) -> None:
    if (out / "orders.csv").exists():
        return
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "data" / "generate.py"),
            "--demand",
            "realistic",
            "--products",
            str(products),
            "--days",
            str(days),
            "--seed",
            "11",
            "--out",
            str(out),
        ],
        check=True,
    )


def read_history(folder: Path) -> series.History:
    orders = pd.read_csv(folder / "orders.csv", usecols=["product_id", "quantity", "created_date"])
    orders["date"] = pd.to_datetime(orders["created_date"].str.strip("'")).dt.date
    cells = pd.DataFrame(orders.groupby(["product_id", "date"], as_index=False)["quantity"].sum())
    products = pd.read_csv(folder / "products.csv").rename(columns={"id": "product_id"})
    return series.History(data_until=max(cells["date"]), cells=cells, products=products)


def holdout(history: series.History, horizon: int) -> dict[str, float]:
    """Fit up to data_until - horizon, score the next horizon days."""
    assert history.data_until is not None
    cutoff = history.data_until - timedelta(days=horizon)
    train_cells = history.cells[history.cells["date"] <= cutoff]
    train = series.History(data_until=cutoff, cells=train_cells, products=history.products)
    result = core.run(train, horizon=horizon)
    full = series.daily_series(history)
    full["date"] = full["ds"].dt.date
    truth = full[full["date"] > cutoff][["unique_id", "date", "y"]]
    preds = result.predictions.merge(
        truth, left_on=["product_id", "date"], right_on=["unique_id", "date"]
    )
    inside80 = ((preds["y"] >= preds["lo_80"]) & (preds["y"] <= preds["hi_80"])).mean()
    inside95 = ((preds["y"] >= preds["lo_95"]) & (preds["y"] <= preds["hi_95"])).mean()
    # Scale: in-sample seasonal naive MAE up to the cutoff; SeasonalNaive's forecast:
    # the last 7 days before the cutoff repeated.
    train_series = full[full["date"] <= cutoff]
    scale = train_series.groupby("unique_id")["y"].apply(lambda s: s.diff(7).abs().mean())
    last7 = train_series.groupby("unique_id").tail(7)
    rows = []
    for pid, g in preds.groupby("product_id"):
        s = scale.get(pid, np.nan)
        if not s or np.isnan(s) or pid not in last7["unique_id"].values:
            continue
        pattern = last7[last7["unique_id"] == pid]["y"].to_numpy()
        if len(pattern) < 7:
            continue
        g = g.sort_values("date")
        snaive = np.resize(pattern, len(g))
        rows.append(
            (
                np.abs(g["y"] - g["quantity"]).mean() / s,
                np.abs(g["y"].to_numpy() - snaive).mean() / s,
            )
        )
    mase = np.array(rows)
    return {
        "products_scored": len(rows),
        "served_mase": float(mase[:, 0].mean()),
        "seasonal_naive_mase": float(mase[:, 1].mean()),
        "coverage_80": float(inside80),
        "coverage_95": float(inside95),
    }


def baseline(folder: Path, horizon: int) -> float:
    from statsforecast import StatsForecast

    started = time.perf_counter()
    orders = pd.read_csv(folder / "orders.csv")
    orders["ds"] = pd.to_datetime(orders["created_date"].str.strip("'"))
    daily = orders.groupby(["product_id", "ds"])["quantity"].sum()
    until = daily.index.get_level_values("ds").max()
    parts = []
    for pid, s in daily.groupby(level="product_id"):
        s = s.droplevel(0)
        full = s.reindex(pd.date_range(s.index.min(), until), fill_value=0)
        if len(full) >= 4 * horizon:
            parts.append(
                pd.DataFrame({"unique_id": pid, "ds": full.index, "y": full.to_numpy(dtype=float)})
            )
    df = pd.concat(parts, ignore_index=True)
    sf = StatsForecast(models=candidates.stat_models(), freq="D", n_jobs=1)
    sf.cross_validation(df=df, h=horizon, n_windows=3, step_size=horizon)
    sf.forecast(df=df, h=horizon)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--horizon", type=int, default=28)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    data = WORK / f"forecast-data-{args.products}x{args.days}"
    data.mkdir(parents=True, exist_ok=True)
    generate(data, args.products, args.days)
    work = clean_work("forecast")
    with embedded_server(work / "pg") as url, app_server(url) as (base, proc):
        for kind in ("products", "orders"):
            upload(base, kind, data / f"{kind}.csv")
        with httpx.Client(base_url=base, timeout=600) as client, PeakRss(proc) as rss:
            started = time.perf_counter()
            run = client.post(
                "/forecasts/runs", json={"horizon": args.horizon}, headers={"X-API-Key": API_KEY}
            ).json()
            while run["status"] == "running":
                time.sleep(0.5)
                run = client.get(f"/forecasts/runs/{run['run_id']}").json()
            seconds = time.perf_counter() - started
        assert run["status"] == "succeeded", run
        print(
            f"full run: {seconds:.1f} s for {run['products']} products, horizon {args.horizon}, peak RSS growth {rss.growth_mb:.0f} MB"
        )
        print("seconds per model/step (summed over 3 backtest windows + final fit):")
        for name, s in sorted(run["models"]["seconds"].items(), key=lambda kv: -kv[1]):
            print(f"  {name:20s} {s:7.2f}")
        print("served:", run["models"]["served"])
        with httpx.Client(base_url=base, timeout=60) as client:
            for path in (
                "/healthz",
                "/forecasts/products/1",
                f"/forecasts/products/{args.products // 2}",
                "/forecasts/accuracy",
            ):
                p50, p99 = time_endpoint(client, path, args.requests, warm=5)
                print(f"  GET {path:28s} p50 {p50:6.1f} ms  p99 {p99:6.1f} ms")
    history = read_history(data)
    started = time.perf_counter()
    figures = holdout(history, args.horizon)
    print(f"holdout ({time.perf_counter() - started:.1f} s): {figures}")
    print(
        f"  served MASE {figures['served_mase'] / figures['seasonal_naive_mase'] - 1:+.1%} against SeasonalNaive(7)"
    )
    print(
        f"baseline plain statsforecast script (8 models, CV 3 windows + forecast): {baseline(data, args.horizon):.1f} s"
    )


if __name__ == "__main__":
    main()
