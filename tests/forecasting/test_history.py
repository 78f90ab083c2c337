"""The sales history a forecast continues (`GET /forecasts/total/history`,
`/forecasts/categories/{category}/history`, `/forecasts/products/{product_id}/history`),
which the dashboard's forecast chart draws before the forecast and its 80% and 95%
intervals; over the app in process, on a database of this module's own: the generator's
realistic demand (12 products, 120 days) and one forecast run, so the levels have a model
of their own and an `unallocated` part."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import URL, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app import db
from app.forecasting import service as forecasts
from tests.conftest import create_database, drop_database, open_client
from tests.forecasting.conftest import load, run_forecast
from tests.helpers import app_for, assert_error, upload
from tests.reliability.test_hostile_params import INJECTIONS

HISTORY_DAYS = 90  # what the dashboard asks for, and the default


@dataclass
class Forecast:
    client: httpx.AsyncClient
    engine: AsyncEngine
    run: dict[str, object]
    categories: list[str]


@pytest.fixture(scope="module")
async def forecast(
    pg_server: URL, tmp_path_factory: pytest.TempPathFactory, realistic: Path
) -> AsyncIterator[Forecast]:
    url = await create_database(pg_server)
    engine = db.create_engine(url, pool_size=1)
    try:
        async for client in open_client(app_for(url, tmp_path_factory.mktemp("levels"))):
            await load(client, realistic)
            run = await run_forecast(client, horizon=7)
            assert run["status"] == "succeeded", run
            async with engine.connect() as conn:
                rows = await conn.execute(
                    text(
                        "SELECT DISTINCT key FROM predicted_level_demand"
                        " WHERE level = 'category' ORDER BY key"
                    )
                )
                categories = [r.key for r in rows]
            assert categories
            yield Forecast(client, engine, run, categories)
    finally:
        await engine.dispose()
        await drop_database(pg_server, url)


async def units_from_orders(
    engine: AsyncEngine, category: str | None, until: date
) -> dict[date, float]:
    """An oracle of a level's units per day: the orders themselves, not a rollup."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT o.created_date, sum(o.quantity) AS quantity FROM orders o"
                " JOIN products p USING (product_id)"
                " WHERE (CAST(:category AS text) IS NULL OR p.category = :category)"
                " AND o.created_date <= :until GROUP BY o.created_date"
            ),
            {"category": category, "until": until},
        )
        return {r.created_date: float(r.quantity) for r in rows}


def units(answer: dict[str, Any]) -> list[tuple[date, float]]:
    return [(date.fromisoformat(d["date"]), d["quantity"]) for d in answer["items"]]


@pytest.mark.one_server
class TestHistoryReads:
    async def test_the_total_is_its_units_up_to_the_run(self, forecast: Forecast) -> None:
        """90 days by default, the last the run read, each the orders' units; the
        forecast's first day is the next."""
        response = await forecast.client.get("/forecasts/total/history")
        assert response.status_code == 200, response.text
        answer = response.json()
        until = date.fromisoformat(str(forecast.run["data_until"]))
        assert answer["run_id"] == forecast.run["run_id"]
        assert answer["data_until"] == until.isoformat()
        sold = await units_from_orders(forecast.engine, None, until)
        days = [until - timedelta(days=HISTORY_DAYS - 1 - i) for i in range(HISTORY_DAYS)]
        assert units(answer) == [(d, sold.get(d, 0.0)) for d in days]
        ahead = (await forecast.client.get("/forecasts/total")).json()["items"]
        assert ahead[0]["date"] == (until + timedelta(days=1)).isoformat()
        # Each day carries both intervals the chart shades.
        assert {"lo_80", "hi_80", "lo_95", "hi_95", "unallocated"} <= set(ahead[0])

    async def test_each_category_and_a_shorter_window(self, forecast: Forecast) -> None:
        until = date.fromisoformat(str(forecast.run["data_until"]))
        for category in forecast.categories:
            response = await forecast.client.get(
                f"/forecasts/categories/{category}/history", params={"days": 7}
            )
            assert response.status_code == 200, response.text
            sold = await units_from_orders(forecast.engine, category, until)
            days = [until - timedelta(days=6 - i) for i in range(7)]
            assert units(response.json()) == [(d, sold.get(d, 0.0)) for d in days]

    async def test_a_product_and_its_csv(self, forecast: Forecast) -> None:
        answer = (await forecast.client.get("/forecasts/products/1/history")).json()
        # Zero-filled from its first sale, as its series is: 90 days at most.
        assert 0 < len(answer["items"]) <= HISTORY_DAYS
        assert answer["items"][-1]["date"] == forecast.run["data_until"]
        response = await forecast.client.get(
            "/forecasts/products/1/history", params={"format": "csv", "days": 3}
        )
        assert response.status_code == 200
        assert 'filename="history_product_1.csv"' in response.headers["content-disposition"]
        lines = response.text.splitlines()
        assert lines[0] == "date,quantity" and len(lines) == 4
        assert lines[-1].startswith(str(forecast.run["data_until"]))

    async def test_unknown_subjects_are_no_forecast(self, forecast: Forecast) -> None:
        for path in (
            "/forecasts/categories/No such category/history",
            f"/forecasts/categories/{forecast.categories[0].upper()}x/history",
            "/forecasts/products/999999/history",
            "/forecasts/products/NOPE/history",
        ):
            assert_error(await forecast.client.get(path), 404, "no_forecast")

    @pytest.mark.parametrize("days", ["0", "367", "-1", "x", "1.5"])
    async def test_bad_windows_are_422(self, forecast: Forecast, days: str) -> None:
        response = await forecast.client.get("/forecasts/total/history", params={"days": days})
        assert_error(response, 422, "validation_error")

    async def test_hostile_categories_are_4xx(self, forecast: Forecast) -> None:
        for value in INJECTIONS:
            if not value.strip():
                continue  # no category: another route
            segment = quote(value, safe="")
            response = await forecast.client.get(f"/forecasts/categories/{segment}/history")
            assert response.status_code in (404, 422), (value[:40], response.text[:200])
            assert set(response.json()["error"]) == {"code", "message", "details"}


class TestLevelHistory:
    @pytest.mark.parametrize("which", ["total", "category"])
    async def test_units_per_day_are_the_orders(self, forecast: Forecast, which: str) -> None:
        """The last 90 days up to the run's data_until, every day, zero-filled, equal to
        the orders' units (an oracle that reads no rollup)."""
        category = None if which == "total" else forecast.categories[-1]
        until = date.fromisoformat(str(forecast.run["data_until"]))
        async with AsyncSession(forecast.engine) as session:
            history = await forecasts.level_units(
                session=session, category=category, until=until, days=HISTORY_DAYS
            )
        days = [d for d, _ in history]
        assert len(days) == HISTORY_DAYS  # 120 days of data: the window is full
        assert days == [until - timedelta(days=HISTORY_DAYS - 1 - i) for i in range(90)]
        sold = await units_from_orders(forecast.engine, category, until)
        assert history == [(d, sold.get(d, 0.0)) for d in days]
        assert sum(q for _, q in history) > 0


class TestSummedLevels:
    async def test_a_level_summed_from_its_products_has_no_new_products_part(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        """Ten days are too short to backtest a level: it is its products' sum, whose
        `unallocated` is zero by construction, not a figure worth a line."""
        await upload(client, "products", "id,name,category,price\n1,A,Hats,1.00\n2,B,Hats,2.00\n")
        rows = ["id,product_id,quantity,created_date"]
        rows += [
            f"{i + 1},{1 + i % 2},{1 + i % 3},{date(2025, 3, 1) + timedelta(days=i)}"
            for i in range(10)
        ]
        assert (await upload(client, "orders", "\n".join(rows) + "\n")).status_code == 201
        assert (await run_forecast(client, horizon=7))["status"] == "succeeded"
        # Their history: from the first sale (not 90 days of zeros), their unallocated 0.
        for path in ("/forecasts/total", "/forecasts/categories/Hats"):
            level = (await client.get(path)).json()
            assert level["model"] == forecasts.SUM_OF_PRODUCTS
            assert {d["unallocated"] for d in level["items"]} == {0.0}
            history = (await client.get(f"{path}/history")).json()
            assert history["items"][0] == {"date": "2025-03-01", "quantity": 1.0}
            assert len(history["items"]) == 10
