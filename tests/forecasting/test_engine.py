"""The pure core: series in, forecasts out (no server, no database)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from app.forecasting import calendar, candidates, levels, selection, serving
from app.forecasting import engine as core
from app.forecasting.options import Options
from app.forecasting.series import History, daily_series, windows_for

UNTIL = date(2025, 6, 30)


def history(products: int = 6, days: int = 90, seed: int = 3) -> History:
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
    return History(data_until=UNTIL, cells=cells, products=products_frame)


class TestSeries:
    def test_zero_filled_from_first_sale_to_data_until(self) -> None:
        cells = pd.DataFrame(
            {
                "product_id": [1, 1],
                "date": [date(2025, 6, 25), date(2025, 6, 28)],
                "quantity": [3, 2],
            }
        )
        h = History(data_until=UNTIL, cells=cells, products=pd.DataFrame())
        s = daily_series(h)
        assert s["y"].tolist() == [3, 0, 0, 2, 0, 0]
        assert s["ds"].iloc[-1] == pd.Timestamp(UNTIL)

    def test_windows_fewer_when_short(self) -> None:
        assert windows_for(730, 28) == 3
        assert windows_for(90, 28) == 2
        assert windows_for(55, 28) == 0


class TestRun:
    def test_never_serves_a_model_that_does_not_beat_seasonal_naive(self) -> None:
        result = core.run(history(), horizon=7, options=Options(lightgbm=False))
        table = result.products.set_index("product_id")
        for pid, row in table.iterrows():
            if row["model"] not in {candidates.SEASONAL_NAIVE, serving.CATEGORY_PROFILE}:
                assert row["mase"] < row["seasonal_naive_mase"], pid
        assert table.loc[6, "model"] == serving.CATEGORY_PROFILE
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
        assert set(table["model"]) <= {*candidates.STAT_MODELS, serving.CATEGORY_PROFILE}
        accuracy = {(a["model"], a["scope"]): a for a in result.accuracy}
        assert accuracy[(candidates.LIGHTGBM, "all")]["products"] == 0
        assert accuracy[(candidates.ENSEMBLE, "all")]["products"] == 0

    def test_empty_history_gives_nothing(self) -> None:
        empty = History(
            data_until=None,
            cells=pd.DataFrame(columns=["product_id", "date", "quantity"]),
            products=pd.DataFrame(columns=["product_id", "category", "price"]),
        )
        result = core.run(empty, horizon=7)
        assert result.predictions.empty and result.products.empty


def part(frame: pd.DataFrame, level: str, key: str) -> pd.DataFrame:
    """One level's (and key's) rows of a run's levels, by date."""
    return frame[(frame["level"] == level) & (frame["key"] == key)].set_index("date")


class TestLightGbmBudget:
    def test_the_global_model_trains_on_the_best_sellers_the_budget_holds(self) -> None:
        """300 products × 120 days: a budget far too small for every product leaves the
        head of the catalogue (the best sellers, at least the timed sample's); a budget
        that holds them all trains on all (None)."""
        rng = np.random.default_rng(2)
        frames = []
        for p in range(1, 301):
            frames.append(
                pd.DataFrame(
                    {
                        "unique_id": p,
                        "ds": pd.date_range(end=pd.Timestamp(UNTIL), periods=120, freq="D"),
                        "y": rng.poisson(p / 30, 120).astype(float),  # higher ids sell more
                    }
                )
            )
        long = pd.concat(frames, ignore_index=True)
        statics = pd.DataFrame({"unique_id": range(1, 301), "category": "A", "price": 1.0})
        statics["category"] = statics["category"].astype("category")
        head = candidates.lightgbm_head(long, statics, 14, budget=1e-6)
        assert head is not None
        assert 0 < len(head) < 300
        units = long.groupby("unique_id")["y"].sum()
        assert units.loc[head].min() >= units.drop(head).max()  # the best sellers
        assert candidates.lightgbm_head(long, statics, 14, budget=1e6) is None


class TestNeverNothing:
    def test_a_product_that_sells_now_and_then_is_forecast_more_than_nothing(self) -> None:
        """Products selling one unit every few days: the median day is 0, so a choice on
        absolute error served forecasts of nothing (biased low by every unit sold). On
        squared error, and with the guard, each is forecast its expected units."""
        rng = np.random.default_rng(4)
        rows = []
        for p in range(1, 9):
            every = 3 + p  # one sale in 4 to 11 days
            for t in range(150):
                d = UNTIL - timedelta(days=149 - t)
                if rng.random() < 1 / every:
                    rows.append((p, d, 1))
        h = History(
            data_until=UNTIL,
            cells=pd.DataFrame(rows, columns=["product_id", "date", "quantity"]),
            products=pd.DataFrame({"product_id": range(1, 9), "category": "A", "price": 1.0}),
        )
        result = core.run(h, horizon=14, options=Options(lightgbm=False))
        recent = h.cells[h.cells["date"] > UNTIL - timedelta(days=28)]["product_id"].unique()
        sums = result.predictions.groupby("product_id")["quantity"].sum()
        assert (sums.reindex(recent) > 0).all(), sums
        (served,) = [a for a in result.accuracy if a["model"] == "served"]
        assert abs(served["bias"]) < 0.5

    def test_the_guard_swaps_an_empty_forecast_for_the_best_that_is_not(self) -> None:
        day = pd.Timestamp(UNTIL + timedelta(days=1))
        final = pd.DataFrame(
            {
                "unique_id": [1, 2, 3],
                "ds": day,
                "SeasonalNaive": [0.0, 0.0, 2.0],
                "WindowAverage": [0.4, 0.5, 1.0],
                "TSB": [0.3, 0.2, 1.0],
            }
        )
        per_model = pd.DataFrame(
            {
                "unique_id": [1, 1, 1, 2, 2, 2, 3, 3, 3],
                "model": ["SeasonalNaive", "WindowAverage", "TSB"] * 3,
                "rmsse": [0.5, 0.9, 0.8, 0.5, 0.9, 0.8, 0.5, 0.9, 0.8],
                "rmse": 1.0,
            }
        )
        chosen = pd.Series(["SeasonalNaive"] * 3, index=[1, 2, 3])
        out = selection.never_nothing(chosen, per_model, final, recent=[1, 3])
        assert out.to_dict() == {1: "TSB", 2: "SeasonalNaive", 3: "SeasonalNaive"}


class TestNewProducts:
    @staticmethod
    def launches(fade_days: float, products: int = 60, days: int = 400) -> History:
        """A product launched every few days, selling 2 a day at launch, fading by e over
        `fade_days` (the marketplace generator's shape)."""
        rng = np.random.default_rng(8)
        rows = []
        for p in range(1, products + 1):
            launch = p * (days // products) - 1  # from 5 days to over a year ago
            for t in range(launch + 1):
                q = rng.poisson(2.0 * np.exp(-t / fade_days))
                if q:
                    rows.append((p, UNTIL - timedelta(days=launch - t), q))
        return History(
            data_until=UNTIL,
            cells=pd.DataFrame(rows, columns=["product_id", "date", "quantity"]),
            products=pd.DataFrame(
                {"product_id": range(1, products + 1), "category": "A", "price": 1.0}
            ),
        )

    def test_the_keep_ratio_is_what_products_of_that_age_kept_of_their_pace(self) -> None:
        """Launches that fade over a week keep little of their first days' pace; products
        that never fade keep all of it (the prior pulls toward 1, no further)."""
        fading = self.launches(fade_days=7)
        kept = serving.keep_ratios(daily_series(fading), UNTIL, 28)
        assert len(kept) == 8 and (kept[:4] < 0.5).all(), kept
        steady = self.launches(fade_days=1e9)
        kept = serving.keep_ratios(daily_series(steady), UNTIL, 28)
        assert (np.abs(kept - 1) < 0.2).all(), kept

    def test_a_new_product_is_forecast_what_its_age_keeps_not_its_launch_pace(self) -> None:
        """Before its category's cap (the run's next step), a short product's forecast is
        its pace so far times what products of its age kept of theirs."""
        h = self.launches(fade_days=7)
        series = daily_series(h)
        days = series.groupby("unique_id").size()
        short = days.index[days < 56]
        assert len(short) >= 5
        new = serving.category_profile(series, short, serving.empty_predictions(), h, 28)
        assert set(new["model"]) == {serving.CATEGORY_PROFILE}
        pace = series.groupby("unique_id")["y"].mean()
        launch_pace = (pace.reindex(short) * 28).sum()
        assert 0 < new["quantity"].sum() < 0.5 * launch_pace


class TestRegressionToTheMean:
    def test_a_band_whose_forecasts_ran_high_is_scaled_down_and_the_first_stays(self) -> None:
        days = pd.date_range(pd.Timestamp(UNTIL) - pd.Timedelta(days=89), periods=90)
        # Product 1 sold 2 a day (band "41 and more" at every cutoff); product 2 nothing.
        series = pd.concat(
            [
                pd.DataFrame({"unique_id": 1, "ds": days, "y": 2.0}),
                pd.DataFrame({"unique_id": 2, "ds": days, "y": 0.0}),
            ],
            ignore_index=True,
        )
        backtest = pd.DataFrame(
            {
                "unique_id": [1] * 28 + [2] * 28,
                "window": 1,
                "y": [1.0] * 28 + [1.0] * 28,
                "WindowAverage": [2.0] * 28 + [0.1] * 28,
            }
        )
        chosen = pd.Series(["WindowAverage", "WindowAverage"], index=[1, 2])
        factors = serving.regression_factors(backtest, chosen, series, UNTIL, 28)
        top = len(serving.RECENT_EDGES)
        assert factors[top] == pytest.approx((28 + 10) / (56 + 10))
        assert factors[0] == 1.0  # nothing sold lately: no ratio over forecasts of ~0
        assert (factors[1:top] == 1.0).all()  # no evidence: the prior


class TestLevels:
    def test_a_category_carried_by_products_that_come_and_go_is_forecast_from_its_own_series(
        self,
    ) -> None:
        """Category "Launches" sells ~12 units a day, every unit from a product that sells
        for a week and is gone (a new one each week): the products' own forecasts say
        little that holds (the short ones' profiles sum to far more than 12), yet the
        category's demand is steady, and its own series sees it. Its products are scaled
        to fit under it. "Steady" (two products selling every day) is forecast as well;
        the total is the categories' sum."""
        rng = np.random.default_rng(11)
        days = 120
        rows, products = [], [(1, "Steady"), (2, "Steady")]
        for t in range(days):
            d = UNTIL - timedelta(days=days - 1 - t)
            for p in (1, 2):
                rows.append((p, d, int(rng.poisson(5)) + 1))
            launch = 100 + t // 7
            if (launch, "Launches") not in products:
                products.append((launch, "Launches"))
            rows.append((launch, d, int(rng.poisson(11)) + 1))
        h = History(
            data_until=UNTIL,
            cells=pd.DataFrame(rows, columns=["product_id", "date", "quantity"]),
            products=pd.DataFrame(products, columns=["product_id", "category"]).assign(price=10.0),
        )
        result = core.run(h, horizon=14, options=Options(lightgbm=False))
        assert result.levels is not None
        lv = result.levels
        launches = part(lv, "category", "Launches")
        assert launches["quantity"].mean() == pytest.approx(12, rel=0.25)
        sold = result.predictions.merge(h.products, on="product_id")
        own = sold[sold["category"] == "Launches"].groupby("date")["quantity"].sum()
        own = own.reindex(launches.index).fillna(0)
        assert (launches["unallocated"] - (launches["quantity"] - own)).abs().max() < 1e-6
        assert (own <= launches["quantity"] + 1e-6).all()
        steady = part(lv, "category", "Steady")
        assert steady["quantity"].mean() == pytest.approx(12, rel=0.25)
        total = part(lv, "total", "")
        both = launches["quantity"] + steady["quantity"]
        assert (total["quantity"] - both.reindex(total.index)).abs().max() < 1e-6
        served = {a["level"]: a for a in result.level_accuracy if a["scope"] == "served"}
        assert set(served) == {"total", "category"}
        assert served["category"]["mase"] < 1.5

    def test_unallocated_is_what_no_product_holds_and_products_fit_under_their_category(
        self,
    ) -> None:
        day = pd.Timestamp(UNTIL + timedelta(days=1))
        own = pd.DataFrame(
            {
                "unique_id": ["total", "category:A", "category:B"],
                "ds": day,
                "quantity": [15.0, 10.0, 5.0],
                "lo_80": [12.0, 8.0, 4.0],
                "hi_80": [18.0, 12.0, 6.0],
                "lo_95": [10.0, 7.0, 3.0],
                "hi_95": [20.0, 13.0, 7.0],
                "model": "AutoETS+MinTrace(ols)",
            }
        )
        products = pd.DataFrame({"product_id": [1, 2, 3], "category": ["A", "A", "B"]})
        predictions = pd.DataFrame(
            {
                "product_id": [1, 2, 3],
                "date": day.date(),
                "quantity": [3.0, 4.0, 8.0],  # A: 7 of 10; B: 8 over 5
                "lo_80": [2.0, 3.0, 6.0],
                "hi_80": [4.0, 5.0, 10.0],
                "lo_95": [1.0, 2.0, 4.0],
                "hi_95": [5.0, 6.0, 12.0],
                "model": "WindowAverage",
            }
        )
        fitted, lv = levels._fit_products(own, predictions, products)
        assert part(lv, "category", "A")["unallocated"].tolist() == pytest.approx([3.0])
        assert part(lv, "category", "B")["unallocated"].tolist() == pytest.approx([0.0])
        assert part(lv, "total", "")["quantity"].tolist() == pytest.approx([15.0])
        assert part(lv, "total", "")["unallocated"].tolist() == pytest.approx([3.0])
        assert fitted["quantity"].tolist() == pytest.approx([3.0, 4.0, 5.0])  # B's 8 to 5
        assert fitted["hi_95"].tolist() == pytest.approx([5.0, 6.0, 12.0 * 5 / 8])

    def test_a_short_history_sums_the_products(self) -> None:
        """Under two horizons of history the levels have no backtest: each is the sum of
        its products, nothing unallocated."""
        h = history(days=40)
        result = core.run(h, horizon=28, options=Options(lightgbm=False))
        assert result.levels is not None
        assert set(result.levels["model"]) == {"sum_of_products"}
        total = result.levels[result.levels["level"] == "total"]["quantity"].sum()
        assert total == pytest.approx(result.predictions["quantity"].sum())
        assert (result.levels["unallocated"] == 0).all()


class TestCalendar:
    def test_carnival_and_corpus_christi_are_holidays(self) -> None:
        days = pd.to_datetime(["2024-02-13", "2024-05-30", "2024-05-31", "2024-12-25"])
        assert calendar.is_holiday(days).tolist() == [1, 1, 0, 1]
        assert calendar.is_weekend(pd.to_datetime(["2024-06-01", "2024-06-03"])).tolist() == [1, 0]


@pytest.mark.one_server
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
