"""The forecast API end to end on a real PostgreSQL: runs, reads, errors, staleness."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import threading
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.forecasting import levels
from app.forecasting import service as forecasts
from tests.conftest import API_KEY
from tests.forecasting.conftest import load, run_forecast, wait_for_run, wait_for_verdict
from tests.helpers import upload


@pytest.fixture
async def forecast(client: httpx.AsyncClient, realistic: Path) -> dict[str, object]:
    await load(client, realistic)
    state = await run_forecast(client, horizon=7)
    assert state["status"] == "succeeded", state
    return state


def hold_run(
    monkeypatch: pytest.MonkeyPatch, first: Callable[[Any], None] = lambda _progress: None
) -> tuple[threading.Event, threading.Event]:
    """The next run's computation calls `first(progress)`, sets `reached`, then waits for
    `release` before computing as usual: (reached, release)."""
    from app.forecasting import engine as core
    from app.forecasting.series import History

    reached, release = threading.Event(), threading.Event()
    real = core.run

    def held(history: History, **kwargs: Any) -> core.Result:
        first(kwargs["progress"])
        reached.set()
        release.wait(30)
        return real(history, **kwargs)

    monkeypatch.setattr(core, "run", held)
    return reached, release


class TestRuns:
    async def test_run_forecasts_every_product_with_a_sale(
        self, client: httpx.AsyncClient, forecast: dict[str, object], engine: AsyncEngine
    ) -> None:
        async with engine.connect() as conn:
            sold = (
                await conn.execute(text("SELECT count(*) FROM product_sales WHERE quantity > 0"))
            ).scalar()
            days = (
                await conn.execute(
                    text(
                        "SELECT count(DISTINCT date), count(*) FROM predicted_product_demand WHERE run_id = :r"
                    ),
                    {"r": forecast["run_id"]},
                )
            ).one()
        assert sold is not None
        assert forecast["products"] == sold
        assert tuple(days) == (7, 7 * sold)
        assert forecast["progress"] == 1.0
        latest = (await client.get("/forecasts/runs/latest")).json()
        assert latest["run_id"] == forecast["run_id"]

    async def test_horizon_out_of_range_is_422(self, client: httpx.AsyncClient) -> None:
        for horizon in (0, 366, "x"):
            response = await client.post(
                "/forecasts/runs", json={"horizon": horizon}, headers={"X-API-Key": API_KEY}
            )
            assert response.status_code == 422
            assert response.json()["error"]["code"]

    async def test_write_key_required(self, client: httpx.AsyncClient) -> None:
        assert (await client.post("/forecasts/runs")).status_code == 401

    async def test_empty_database_succeeds_with_zero_products(
        self, client: httpx.AsyncClient
    ) -> None:
        state = await run_forecast(client)
        assert state["status"] == "succeeded"
        assert state["products"] == 0
        assert (await client.get("/forecasts/products/1")).json()["error"]["code"] == "no_forecast"

    async def test_second_run_while_one_holds_the_lock_is_409(
        self, client: httpx.AsyncClient, settings: object, engine: AsyncEngine
    ) -> None:
        from app.forecasting import runs

        handle = await runs.start(url=engine.url, horizon=7, engine_name="local")
        try:
            response = await client.post("/forecasts/runs", headers={"X-API-Key": API_KEY})
            assert response.status_code == 409
            body = response.json()["error"]
            assert body["code"] == "run_in_progress"
            assert body["details"]["run_id"] == handle.run_id
        finally:
            await handle.conn.close()

    async def test_dead_run_is_failed_and_the_previous_stays_served(
        self, client: httpx.AsyncClient, forecast: dict[str, object], engine: AsyncEngine
    ) -> None:
        from app.forecasting import runs

        handle = await runs.start(url=engine.url, horizon=7, engine_name="local")
        await handle.conn.close()  # the process holding it dies: its lock goes with it
        dead = (await client.get(f"/forecasts/runs/{handle.run_id}")).json()
        assert dead["status"] == "failed"
        assert dead["error"]["code"] == "interrupted"
        served = (await client.get("/forecasts/products/1")).json()
        assert served["run_id"] == forecast["run_id"]

    async def test_failing_run_is_marked_failed_with_its_error(
        self,
        client: httpx.AsyncClient,
        forecast: dict[str, object],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        from app.forecasting import engine as core

        def broken(*_: object, **__: object) -> None:
            raise RuntimeError("model exploded half-way")

        monkeypatch.setattr(core, "run", broken)
        state = await run_forecast(client)
        assert state["status"] == "failed"
        assert "model exploded" in state["error"]["message"]
        # and told: an alert at /alerts (raised in the background, once the run ended)
        for _ in range(100):
            told = (await client.get("/alerts", params={"event": "forecast_failed"})).json()
            if told["items"]:
                break
            await asyncio.sleep(0.05)
        [alert] = told["items"]
        assert alert["subject"] == f"forecast run {state['run_id']}"
        assert "model exploded" in alert["message"]
        served = (await client.get("/forecasts/products/1")).json()
        assert served["run_id"] == forecast["run_id"]
        assert (await client.get("/forecasts/runs/latest")).json()["run_id"] == state["run_id"]

    async def test_run_whose_connection_is_lost_is_failed_quietly(
        self,
        client: httpx.AsyncClient,
        engine: AsyncEngine,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """The database ends the run's connection while it computes: the run is marked
        failed (a warning, not an error with a traceback), its lock is free for the next."""
        from app.forecasting import engine as core

        real = core.run
        computing, release = hold_run(monkeypatch)
        started = await client.post("/forecasts/runs", headers={"X-API-Key": API_KEY})
        assert started.status_code == 202, started.text
        assert await asyncio.to_thread(computing.wait, 30)
        async with engine.connect() as conn:
            killed = await conn.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND application_name = 'orderlens forecast'"
                )
            )
        assert killed == 1
        with caplog.at_level(logging.WARNING, logger="app.forecasting.runs"):
            release.set()
            state = await wait_for_verdict(client, started.json()["run_id"])
        assert state["status"] == "failed"
        assert state["error"]["code"] == "database_unavailable"
        assert "went away" in state["error"]["message"]
        assert [r.levelname for r in caplog.records if r.name == "app.forecasting.runs"] == [
            "WARNING"
        ]
        monkeypatch.setattr(core, "run", real)
        assert (await run_forecast(client))["status"] == "succeeded"

    async def test_a_run_says_its_stage_while_it_computes(
        self, client: httpx.AsyncClient, realistic: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The run's answer names what it is doing, beside its progress; `done` at the end."""
        await load(client, realistic)
        reached, release = hold_run(
            monkeypatch,
            first=lambda progress: progress(0.25, "backtest window 1 of 3: 12 products"),
        )
        started = await client.post("/forecasts/runs", headers={"X-API-Key": API_KEY})
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        assert await asyncio.to_thread(reached.wait, 30)
        for _ in range(300):  # written every 0.5 s: a bound, not a timing
            state = (await client.get(f"/forecasts/runs/{run_id}")).json()
            if state["stage"] == "backtest window 1 of 3: 12 products":
                break
            await asyncio.sleep(0.1)
        assert state["stage"] == "backtest window 1 of 3: 12 products", state
        assert state["progress"] == 0.25
        release.set()
        done = await wait_for_run(client, run_id)
        assert (done["status"], done["stage"]) == ("succeeded", "done")

    async def test_a_run_whose_database_goes_away_stops_computing(
        self,
        client: httpx.AsyncClient,
        engine: AsyncEngine,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """The run's connection is ended while it computes: the computation is stopped at
        its next step (it would otherwise compute on for minutes to store nothing)."""
        from app.forecasting import engine as core
        from app.forecasting.series import History

        computing, steps = threading.Event(), []

        def long(history: History, **kwargs: Any) -> core.Result:
            progress = kwargs["progress"]
            computing.set()
            for step in range(600):  # a minute of steps, 0.1 s each
                progress(step / 600)
                steps.append(step)
                time.sleep(0.1)
            raise AssertionError("the computation was not stopped")

        monkeypatch.setattr(core, "run", long)
        started = await client.post("/forecasts/runs", headers={"X-API-Key": API_KEY})
        assert started.status_code == 202, started.text
        assert await asyncio.to_thread(computing.wait, 30)
        async with engine.connect() as conn:
            await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND application_name = 'orderlens forecast'"
                )
            )
        killed_at = len(steps)
        state = await wait_for_run(client, started.json()["run_id"])
        assert state["status"] == "failed"
        # Readers find it dead at once (its lock is free): `interrupted`; or the run's own
        # failure got there first.
        assert state["error"]["code"] in {"interrupted", "database_unavailable"}
        for _ in range(100):  # until the computation has stopped taking steps
            before = len(steps)
            await asyncio.sleep(0.5)
            if len(steps) == before:
                break
        assert len(steps) - killed_at < 50  # stopped within seconds, not after the minute


class TestReads:
    async def test_product_forecast_shape_and_bounds(
        self, client: httpx.AsyncClient, forecast: dict[str, object]
    ) -> None:
        body = (await client.get("/forecasts/products/1")).json()
        assert set(body) >= {
            "product_id",
            "product_name",
            "category",
            "run_id",
            "model",
            "data_until",
            "stale",
            "accuracy",
            "items",
        }
        assert body["stale"] is False
        assert len(body["items"]) == 7
        assert body["items"][0]["date"] > body["data_until"]
        for day in body["items"]:
            assert (
                0 <= day["lo_95"] <= day["lo_80"] <= day["quantity"] <= day["hi_80"] <= day["hi_95"]
            )
        if body["model"] not in {"SeasonalNaive", "category_profile"}:
            assert body["accuracy"]["mase"] < body["accuracy"]["seasonal_naive_mase"]

    async def test_unknown_product_is_404_no_forecast(
        self, client: httpx.AsyncClient, forecast: dict[str, object]
    ) -> None:
        response = await client.get("/forecasts/products/999999")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "no_forecast"

    async def test_stale_once_an_orders_upload_changes_rows(
        self, client: httpx.AsyncClient, forecast: dict[str, object]
    ) -> None:
        same = await upload(
            client, "orders", "id,product_id,quantity,created_date\n1,2,2,2024-11-01\n"
        )
        assert (await client.get("/forecasts/products/1")).json()["stale"] is False, same.text
        new = await upload(
            client, "orders", "id,product_id,quantity,created_date\n99999999,1,1,2020-01-01\n"
        )
        assert new.json()["rows_inserted"] == 1
        assert (await client.get("/forecasts/products/1")).json()["stale"] is True

    async def test_levels_agree_and_categories_hold_their_products(
        self, client: httpx.AsyncClient, forecast: dict[str, object]
    ) -> None:
        """The total is the sum of the categories, day by day; a category is its
        products' forecasts plus its `unallocated`, never less than its products."""
        products = (await client.get("/forecasts/products")).json()["items"]
        categories = sorted({p["category"] for p in products})
        total = (await client.get("/forecasts/total")).json()
        assert total["level"] == "total" and total["category"] is None
        assert total["products"] == len(products)
        assert len(total["items"]) == 7
        summed = [0.0] * 7
        for category in categories:
            members = [p["product_id"] for p in products if p["category"] == category]
            each = [(await client.get(f"/forecasts/products/{p}")).json()["items"] for p in members]
            body = (await client.get(f"/forecasts/categories/{category}")).json()
            assert body["level"] == "category" and body["category"] == category
            assert body["products"] == len(members)
            assert body["model"].rsplit("+", 1)[1] == total["model"].rsplit("+", 1)[1]
            for d, day in enumerate(body["items"]):
                own = sum(items[d]["quantity"] for items in each)
                assert day["quantity"] == pytest.approx(own + day["unallocated"], abs=0.01)
                assert day["unallocated"] >= 0
                assert (
                    0 <= day["lo_95"] <= day["lo_80"] <= day["quantity"] <= day["hi_80"]
                    <= day["hi_95"]
                )  # fmt: skip
                summed[d] += day["quantity"]
        for d, day in enumerate(total["items"]):
            assert day["quantity"] == pytest.approx(summed[d], abs=0.01 * len(categories))
        listed = (await client.get("/forecasts/categories")).json()
        assert sorted(i["category"] for i in listed["items"]) == categories
        assert listed["run_id"] == total["run_id"]
        units = [i["quantity"] for i in listed["items"]]
        assert units == sorted(units, reverse=True)
        for item in listed["items"]:
            days = (await client.get(f"/forecasts/categories/{item['category']}")).json()
            summed_days = sum(d["quantity"] for d in days["items"])  # each day rounded
            assert item["quantity"] == pytest.approx(summed_days, abs=0.01)
            assert item["model"] == days["model"] and item["products"] == days["products"]
        listed_csv = (await client.get("/forecasts/categories?format=csv")).text
        assert listed_csv.startswith("category,model,quantity,unallocated,products")
        missing = await client.get("/forecasts/categories/Nope")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "no_forecast"
        nul = await client.get("/forecasts/categories/a%00b")  # was a 500 from PostgreSQL
        assert nul.status_code == 422
        assert nul.json()["error"]["code"] == "validation_error"
        csv_text = (await client.get("/forecasts/total?format=csv")).text
        assert csv_text.startswith("model,date,quantity,lo_80,hi_80,lo_95,hi_95,unallocated")

    async def test_accuracy_names_models_and_always_seasonal_naive(
        self, client: httpx.AsyncClient, forecast: dict[str, object]
    ) -> None:
        items = (await client.get("/forecasts/accuracy")).json()["items"]
        names = {(i["level"], i["model"], i["scope"]) for i in items}
        assert ("product", "SeasonalNaive", "all") in names
        assert ("product", "CrostonOptimized", "all") in names
        assert ("product", "LightGBM", "all") in names
        (product,) = [i for i in items if i["level"] == "product" and i["model"] == "served"]
        assert product["bias"] is not None and product["rmsse"] is not None
        assert 0 <= product["coverage_80_sales_days"] <= product["coverage_95"] + 1
        for level in ("total", "category"):
            assert (level, "SeasonalNaive", "all") in names
            assert (level, "AutoETS", "all") in names
            (served,) = [i for i in items if i["level"] == level and i["scope"] == "served"]
            assert served["model"].rsplit("+", 1)[1] in levels.RECONCILERS
            assert served["bias"] is not None
            for key in ("coverage_80", "coverage_95", "coverage_80_sales_days"):
                assert 0 <= served[key] <= 1
        csv_text = (await client.get("/forecasts/accuracy?format=csv")).text
        assert csv_text.startswith(
            "level,model,scope,series,products,mae,rmse,rmsse,mase,bias,coverage_80,coverage_95,"
            "coverage_80_sales_days"
        )

    async def test_level_export_csv(
        self, client: httpx.AsyncClient, forecast: dict[str, object]
    ) -> None:
        response = await client.get("/exports/predicted_level_demand.csv")
        assert response.status_code == 200
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert list(rows[0]) == [
            "run_id", "level", "category", "date", "quantity", "lo_80", "hi_80", "lo_95",
            "hi_95", "unallocated", "model",
        ]  # fmt: skip
        total = [r for r in rows if r["level"] == "total"]
        assert len(total) == 7 and {r["category"] for r in total} == {""}
        body = (await client.get("/forecasts/total")).json()
        assert [float(r["quantity"]) for r in total] == [d["quantity"] for d in body["items"]]
        categories = {r["category"] for r in rows if r["level"] == "category"}
        names = {p["category"] for p in (await client.get("/forecasts/products")).json()["items"]}
        assert categories == names

    async def test_export_csv(self, client: httpx.AsyncClient, forecast: dict[str, object]) -> None:
        response = await client.get("/exports/predicted_product_demand.csv")
        assert response.status_code == 200
        rows = list(csv.reader(io.StringIO(response.text)))
        assert rows[0] == [
            "run_id",
            "product_id",
            "product_name",
            "date",
            "quantity",
            "lo_80",
            "hi_80",
            "lo_95",
            "hi_95",
            "model",
        ]
        assert len(rows) - 1 == 7 * int(str(forecast["products"]))

    async def test_product_csv(
        self, client: httpx.AsyncClient, forecast: dict[str, object]
    ) -> None:
        response = await client.get("/forecasts/products/1", headers={"Accept": "text/csv"})
        assert response.headers["content-type"].startswith("text/csv")
        assert response.text.splitlines()[0] == "model,date,quantity,lo_80,hi_80,lo_95,hi_95"

    async def test_dashboard_forecast_chart_reads(
        self, client: httpx.AsyncClient, forecast: dict[str, object]
    ) -> None:
        """What the dashboard's forecast chart draws: the product's forecast with its
        intervals and the sales before it (the chart itself: tests/dashboard)."""
        response = await client.get("/forecasts/products/1")
        assert response.status_code == 200
        assert {"lo_80", "hi_80", "lo_95", "hi_95"} <= set(response.json()["items"][0])
        history = await client.get("/forecasts/products/1/history")
        assert history.status_code == 200 and history.json()["items"]
        assert (await client.get("/forecasts/products/424242/history")).status_code == 404
        assert (await client.get("/dashboard/charts/forecast.svg?product_id=1")).status_code == 404
        page = (await client.get("/")).text
        assert 'id="forecast-product"' in page

    async def test_chart_history_starts_at_the_first_sale(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        """Zero-filled from the product's first sale, as its series is: no flat line of
        days before the product existed; at most the last 90 days."""
        await upload(client, "products", "id,name,category,price\n1,A,X,1.00\n2,B,X,1.00\n")
        rows = ["id,product_id,quantity,created_date"]
        rows += [f"{i},1,2,{date(2025, 1, 1) + timedelta(days=i)}" for i in range(200)]
        rows += ["1001,2,3,2025-07-10", "1002,2,1,2025-07-12", "1003,2,1,2025-07-19"]
        assert (await upload(client, "orders", "\n".join(rows) + "\n")).status_code == 201
        async with AsyncSession(engine) as session:
            recent = await forecasts.recent_units(
                session=session, product_id=2, until=date(2025, 7, 19), days=90
            )
            long = await forecasts.recent_units(
                session=session, product_id=1, until=date(2025, 7, 19), days=90
            )
        assert recent[0] == (date(2025, 7, 10), 3.0)
        assert [q for _, q in recent] == [3, 0, 1, 0, 0, 0, 0, 0, 0, 1]
        assert len(long) == 90 and long[-1] == (date(2025, 7, 19), 2.0)


class TestKeptAnswers:
    """Forecast reads are kept per data version, like every read (issue 15)."""

    async def test_a_new_run_is_seen_by_the_next_read(
        self, client: httpx.AsyncClient, forecast: dict[str, object]
    ) -> None:
        paths = (
            "/forecasts/products/1",
            "/forecasts/products/1?format=csv",
            "/forecasts/products",
            "/forecasts/accuracy",
            "/forecasts/runs/latest",
            f"/forecasts/runs/{forecast['run_id']}",
        )
        before = {path: await client.get(path) for path in paths}
        for path, first in before.items():
            again = await client.get(path)
            assert again.content == first.content
            assert again.headers["etag"] == first.headers["etag"], path
        state = await run_forecast(client, horizon=5)
        assert state["status"] == "succeeded"
        assert (await client.get("/forecasts/products/1")).json()["run_id"] == state["run_id"]
        assert (await client.get("/forecasts/accuracy")).json()["run_id"] == state["run_id"]
        assert (await client.get("/forecasts/products")).json()["run_id"] == state["run_id"]
        latest = await client.get("/forecasts/runs/latest")
        assert latest.json()["run_id"] == state["run_id"]
        csv_rows = (await client.get("/forecasts/products/1?format=csv")).text.splitlines()
        assert len(csv_rows) == 1 + 5
        for path, first in before.items():
            after = await client.get(path)
            assert after.headers["x-data-version"] != first.headers["x-data-version"], path
            # The old run's own answer is the same bytes, hence the same ETag.
            assert (after.headers["etag"] == first.headers["etag"]) is path.endswith(
                f"/runs/{forecast['run_id']}"
            ), path

    async def test_a_running_run_is_never_kept_and_its_progress_moves_no_version(
        self, client: httpx.AsyncClient, forecast: dict[str, object], engine: AsyncEngine
    ) -> None:
        from app.forecasting import queries, runs

        kept = await client.get("/kpis")
        handle = await runs.start(url=engine.url, horizon=7, engine_name="local")
        try:
            for path in ("/forecasts/runs/latest", f"/forecasts/runs/{handle.run_id}"):
                for fmt in ("json", "csv"):
                    live = await client.get(f"{path}?format={fmt}")
                    assert live.status_code == 200
                    assert live.headers["cache-control"] == "no-store"
                    assert "etag" not in live.headers
            started = await client.get("/kpis")  # the run's start moved the version
            assert started.headers["etag"] == kept.headers["etag"]
            assert started.headers["x-data-version"] != kept.headers["x-data-version"]
            await handle.conn.execute(queries.SET_PROGRESS, handle.run_id, 0.5, "halfway")
            progressed = (await client.get("/forecasts/runs/latest")).json()
            assert progressed["progress"] == 0.5
            unmoved = await client.get("/kpis")
            assert unmoved.headers["x-data-version"] == started.headers["x-data-version"]
        finally:
            await handle.conn.close()


class TestDatesThatCannotBreakARun:
    async def test_orders_after_today_and_before_the_history_are_left_out_and_counted(
        self, client: httpx.AsyncClient, realistic: Path
    ) -> None:
        """One accepted order dated 2999-12-31 (or from 2262-04-12, past pandas' range)
        made every run fail with OutOfBoundsDatetime; one from the year 1 would have the
        run zero-fill two thousand years. Both are left out, counted, and the run serves
        the rest."""
        await load(client, realistic)
        with (realistic / "orders.csv").open() as f:
            until = max(row["created_date"].strip("'") for row in csv.DictReader(f))
        strays = [
            (9_000_001, "2999-12-31", 3),
            (9_000_002, "2262-04-12", 1),
            (9_000_003, (date.today() + timedelta(days=1)).isoformat(), 5),
            (9_000_004, "1000-01-01", 2),
            (9_000_005, "0001-01-01", 1),
        ]
        csv_text = "id,product_id,quantity,created_date\n" + "".join(
            f"{i},1,{q},{d}\n" for i, d, q in strays
        )
        added = await upload(client, "orders", csv_text)
        assert added.status_code == 201, added.text
        assert added.json()["rows_inserted"] == len(strays)

        state = await run_forecast(client)
        assert state["status"] == "succeeded", state
        assert state["data_until"] == until
        after, before = state["left_out"]["after_today"], state["left_out"]["before_history"]
        assert after == {
            "today": date.today().isoformat(),
            "orders": 3,
            "units": 9,
            "first_date": (date.today() + timedelta(days=1)).isoformat(),
            "last_date": "2999-12-31",
        }
        history_from = date.fromisoformat(until) - timedelta(days=1096 - 1)
        assert before == {
            "history_days": 1096,
            "history_from": history_from.isoformat(),
            "orders": 2,
            "units": 3,
        }
        body = (await client.get("/forecasts/products/1")).json()
        assert (
            body["items"][0]["date"] == (date.fromisoformat(until) + timedelta(days=1)).isoformat()
        )

    async def test_only_future_orders_is_an_empty_run_that_says_so(
        self, client: httpx.AsyncClient
    ) -> None:
        assert (
            await upload(client, "products", "id,name,category,price\n1,A,C,1.00\n")
        ).status_code == 201
        csv_text = "id,product_id,quantity,created_date\n1,1,2,2999-12-31\n"
        assert (await upload(client, "orders", csv_text)).status_code == 201
        state = await run_forecast(client)
        assert state["status"] == "succeeded", state
        assert state["data_until"] is None
        assert state["products"] == 0
        assert state["left_out"]["after_today"]["orders"] == 1
        assert state["left_out"]["before_history"]["history_from"] is None
