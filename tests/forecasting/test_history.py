"""The forecast chart of the total and of a category (`/dashboard/charts/forecast.svg`
with `level=total` or `category=`), over the app in process, on a database of this
module's own: the generator's realistic demand (12 products, 120 days) and one forecast
run, so the levels have a model of their own and an `unallocated` part."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import URL, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app import db
from app.dashboard import charts
from app.dashboard.router import FORECAST_HISTORY_DAYS
from app.forecasting import service as forecasts
from tests.conftest import create_database, drop_database, open_client
from tests.dashboard.test_page import assert_self_contained, svg_tree, texts
from tests.forecasting.conftest import load, run_forecast
from tests.helpers import app_for, assert_error, upload
from tests.reliability.test_hostile_params import INJECTIONS

CHART = "/dashboard/charts/forecast.svg"
LEGEND = ("Sold", "Forecast", "80% low", "80% high")


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


@pytest.mark.one_server
class TestLevelCharts:
    async def test_the_total_draws_its_history_forecast_band_and_new_products(
        self, forecast: Forecast
    ) -> None:
        response = await forecast.client.get(CHART, params={"level": "total"})
        tree = svg_tree(response)
        assert_self_contained(tree)
        wide, narrow = texts(tree, "wide"), texts(tree, "narrow")
        assert {*LEGEND, charts.UNALLOCATED} <= set(wide), wide
        # On a phone, one entry for the band and a short name: two legend rows.
        assert {"Sold", "Forecast", "80% band", charts.UNALLOCATED_SHORT} <= set(narrow)
        assert "80% high" not in narrow
        assert "No forecast" not in wide + narrow

    async def test_each_category_draws_its_chart(self, forecast: Forecast) -> None:
        for category in forecast.categories:
            response = await forecast.client.get(CHART, params={"category": category})
            labels = texts(svg_tree(response))
            assert {*LEGEND, charts.UNALLOCATED} <= set(labels), (category, labels)

    async def test_an_unknown_category_is_no_forecast(self, forecast: Forecast) -> None:
        for name in ("No such category", forecast.categories[0].upper() + "x", " "):
            response = await forecast.client.get(CHART, params={"category": name})
            assert_error(response, 404, "no_forecast")

    @pytest.mark.parametrize(
        "params",
        [
            {"level": "category"},
            {"level": "TOTAL"},
            {"level": ""},
            {"category": ""},
            {"category": "a\x00b"},
            {"category": "x" * 101},
        ],
    )
    async def test_bad_parameters_are_422(self, forecast: Forecast, params: dict[str, str]) -> None:
        assert_error(await forecast.client.get(CHART, params=params), 422, "validation_error")

    @pytest.mark.parametrize(
        "params",
        [
            {},
            {"level": "total", "category": "Shoes"},
            {"product_id": "1", "level": "total"},
            {"product_id": "1", "category": "Shoes"},
        ],
    )
    async def test_one_forecast_per_chart(self, forecast: Forecast, params: dict[str, str]) -> None:
        error = assert_error(
            await forecast.client.get(CHART, params=params), 422, "invalid_forecast_subject"
        )
        assert error["details"] == {"given": list(params)}

    async def test_hostile_categories_are_4xx(self, forecast: Forecast) -> None:
        for value in INJECTIONS:
            response = await forecast.client.get(CHART, params={"category": value})
            assert response.status_code in (404, 422), (value[:40], response.text[:200])
            assert set(response.json()["error"]) == {"code", "message", "details"}

    async def test_a_product_chart_is_as_before(self, forecast: Forecast) -> None:
        tree = svg_tree(await forecast.client.get(CHART, params={"product_id": 1}))
        for layout in ("wide", "narrow"):
            labels = texts(tree, layout)
            assert set(LEGEND) <= set(labels)
            assert charts.UNALLOCATED not in labels and charts.UNALLOCATED_SHORT not in labels


class TestLevelHistory:
    @pytest.mark.parametrize("which", ["total", "category"])
    async def test_units_per_day_are_the_orders(self, forecast: Forecast, which: str) -> None:
        """The last 90 days up to the run's data_until, every day, zero-filled, equal to
        the orders' units (an oracle that reads no rollup)."""
        category = None if which == "total" else forecast.categories[-1]
        until = date.fromisoformat(str(forecast.run["data_until"]))
        async with AsyncSession(forecast.engine) as session:
            history = await forecasts.level_units(
                session=session, category=category, until=until, days=FORECAST_HISTORY_DAYS
            )
        days = [d for d, _ in history]
        assert len(days) == FORECAST_HISTORY_DAYS  # 120 days of data: the window is full
        assert days == [until - timedelta(days=FORECAST_HISTORY_DAYS - 1 - i) for i in range(90)]
        sold = await units_from_orders(forecast.engine, category, until)
        assert history == [(d, sold.get(d, 0.0)) for d in days]
        assert sum(q for _, q in history) > 0


class TestSummedLevels:
    async def test_a_level_summed_from_its_products_draws_no_new_products_line(
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
        for params in ({"level": "total"}, {"category": "Hats"}):
            tree = svg_tree(await client.get(CHART, params=params))
            for layout in ("wide", "narrow"):
                labels = texts(tree, layout)
                assert set(LEGEND) <= set(labels), (params, labels)
                assert charts.UNALLOCATED_SHORT not in labels and charts.UNALLOCATED not in labels
        async with AsyncSession(engine) as session:
            history = await forecasts.level_units(
                session=session, category="Hats", until=date(2025, 3, 10), days=90
            )
        # From the first sale of any product, as the level's series (not 90 days of zeros).
        assert history[0] == (date(2025, 3, 1), 1.0)
        assert len(history) == 10
