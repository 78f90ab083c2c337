"""The pure core: series in, forecasts out (no server, no database)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from app.forecasting import calendar
from app.forecasting import engine as core
from app.forecasting.options import Options

UNTIL = date(2025, 6, 30)


def history(products: int = 6, days: int = 90, seed: int = 3) -> core.History:
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(1, products + 1):
        length = days if p != products else 10  # the last one is new: a short history
        for t in range(length):
            d = UNTIL - timedelta(days=length - 1 - t)
            q = rng.poisson(2.0 * (1.6 if d.weekday() >= 5 else 1.0) + p * 0.3)
            if q:
                rows.append((p, d, q))
    cells = pd.DataFrame(rows, columns=["product_id", "date", "quantity"])
    products_frame = pd.DataFrame(
        {
            "product_id": range(1, products + 1),
            "category": ["A", "B"] * (products // 2),
            "price": 10.0,
        }
    )
    return core.History(data_until=UNTIL, cells=cells, products=products_frame)


class TestSeries:
    def test_zero_filled_from_first_sale_to_data_until(self) -> None:
        cells = pd.DataFrame(
            {
                "product_id": [1, 1],
                "date": [date(2025, 6, 25), date(2025, 6, 28)],
                "quantity": [3, 2],
            }
        )
        h = core.History(data_until=UNTIL, cells=cells, products=pd.DataFrame())
        s = core.daily_series(h)
        assert s["y"].tolist() == [3, 0, 0, 2, 0, 0]
        assert s["ds"].iloc[-1] == pd.Timestamp(UNTIL)

    def test_windows_fewer_when_short(self) -> None:
        assert core.windows_for(730, 28) == 3
        assert core.windows_for(90, 28) == 2
        assert core.windows_for(55, 28) == 0


class TestRun:
    def test_never_serves_a_model_that_does_not_beat_seasonal_naive(self) -> None:
        result = core.run(history(), horizon=7, options=Options(lightgbm=False))
        table = result.products.set_index("product_id")
        for pid, row in table.iterrows():
            if row["model"] not in {core.SEASONAL_NAIVE, core.CATEGORY_PROFILE}:
                assert row["mase"] < row["seasonal_naive_mase"], pid
        assert table.loc[6, "model"] == core.CATEGORY_PROFILE
        p = result.predictions
        assert len(p) == 6 * 7
        assert (p["lo_95"] >= 0).all()
        assert (p["lo_95"] <= p["lo_80"]).all() and (p["lo_80"] <= p["quantity"]).all()
        assert (p["quantity"] <= p["hi_80"]).all() and (p["hi_80"] <= p["hi_95"]).all()

    def test_a_month_of_history_forecasts_without_lightgbm_where_its_lags_do_not_fit(
        self,
    ) -> None:
        """30 days and a weekly horizon: the backtest's earliest window trains on 9 days,
        where LightGBM's 28-day lags leave no row to learn from. The run still forecasts
        every product, and LightGBM or the Ensemble are never chosen on part of the
        windows."""
        result = core.run(history(products=8, days=30), horizon=7)
        table = result.products.set_index("product_id")
        assert len(result.predictions) == 8 * 7
        assert set(table["model"]) <= {*core.STAT_MODELS, core.CATEGORY_PROFILE}
        accuracy = {(a["model"], a["scope"]): a for a in result.accuracy}
        assert accuracy[(core.LIGHTGBM, "all")]["products"] == 0
        assert accuracy[(core.ENSEMBLE, "all")]["products"] == 0

    def test_empty_history_gives_nothing(self) -> None:
        empty = core.History(
            data_until=None,
            cells=pd.DataFrame(columns=["product_id", "date", "quantity"]),
            products=pd.DataFrame(columns=["product_id", "category", "price"]),
        )
        result = core.run(empty, horizon=7)
        assert result.predictions.empty and result.products.empty


class TestCalendar:
    def test_carnival_and_corpus_christi_are_holidays(self) -> None:
        days = pd.to_datetime(["2024-02-13", "2024-05-30", "2024-05-31", "2024-12-25"])
        assert calendar.is_holiday(days).tolist() == [1, 1, 0, 1]
        assert calendar.is_weekend(pd.to_datetime(["2024-06-01", "2024-06-03"])).tolist() == [1, 0]


class TestDask:
    def test_dask_engine_forecasts_as_the_local_one(self) -> None:
        distributed = pytest.importorskip("distributed")
        h = history(products=4, days=60)
        local = core.run(h, horizon=7, options=Options(lightgbm=False))
        with distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster:
            dask = core.run(
                h,
                horizon=7,
                options=Options(
                    engine="dask", dask_address=cluster.scheduler_address, lightgbm=False
                ),
            )
        key = ["product_id", "date"]
        a = local.predictions.sort_values(key, ignore_index=True)
        b = dask.predictions.sort_values(key, ignore_index=True)
        assert a["model"].tolist() == b["model"].tolist()
        for col in ("quantity", "lo_80", "hi_80", "lo_95", "hi_95"):
            np.testing.assert_allclose(a[col].to_numpy(float), b[col].to_numpy(float), rtol=1e-6)
