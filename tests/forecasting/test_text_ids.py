"""Forecasts of products with text ids (issue 27, item 4): stored under the product's key
as every forecast is, shown and found by the code as the file wrote it; integer ids stay
integers (and JSON numbers)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.forecasting.conftest import run_forecast
from tests.helpers import assert_error, upload

# The realistic data's product ids written as codes: a best seller with its whole
# history (backtested), one launched in its last weeks (too new to backtest: its
# category's profile), one with a space (encoded in a URL) and one that a spreadsheet
# would run as a formula.
CODES = {"8": "85123A", "11": "BANK CHARGES", "4": "+4"}
INTEGER = 3  # stays an integer id


def with_codes(path: Path, column: str) -> str:
    """A generator file with the ids of CODES in `column` written as their codes."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, column: CODES.get(row[column], row[column])})
    return out.getvalue()


@pytest.fixture
async def forecast(client: httpx.AsyncClient, realistic: Path) -> dict[str, Any]:
    """The realistic data with CODES uploaded with `?ids=text`, and one run over it."""
    for kind, column in (("products", "id"), ("orders", "product_id")):
        content = with_codes(realistic / f"{kind}.csv", column)
        response = await upload(client, kind, content, params={"ids": "text"})
        assert response.status_code == 201, response.text
        assert response.json()["rows_rejected"] == 0, response.text
    state = await run_forecast(client, horizon=7)
    assert state["status"] == "succeeded", state
    return state


async def stored_days(engine: AsyncEngine, code: str) -> list[tuple[str, float]]:
    """An oracle: the run's stored days of the product with `code`, found by its key."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT d.date, d.quantity FROM predicted_product_demand d"
                " JOIN products p USING (product_id)"
                " WHERE p.code = :code AND d.run_id = (SELECT max(run_id) FROM forecast_runs)"
                " ORDER BY d.date"
            ),
            {"code": code},
        )
        return [(r.date.isoformat(), round(r.quantity, 3)) for r in rows]


class TestCodedProducts:
    async def test_the_list_shows_codes_and_integers(
        self, client: httpx.AsyncClient, forecast: dict[str, Any]
    ) -> None:
        items = (await client.get("/forecasts/products")).json()["items"]
        ids = [i["product_id"] for i in items]
        assert len(ids) == forecast["products"] == 12
        assert set(CODES.values()) <= set(ids)
        integers = [i for i in ids if not isinstance(i, str)]
        assert sorted(integers) == [1, 2, 3, 5, 6, 7, 9, 10, 12]  # JSON numbers
        assert all(isinstance(i, int) for i in integers)
        rows = list(
            csv.DictReader(io.StringIO((await client.get("/forecasts/products?format=csv")).text))
        )
        assert {r["product_id"] for r in rows} >= {"85123A", "BANK CHARGES", "'+4", "3"}

    @pytest.mark.parametrize("code", list(CODES.values()))
    async def test_a_product_is_found_and_shown_by_its_code(
        self, client: httpx.AsyncClient, engine: AsyncEngine, forecast: dict[str, Any], code: str
    ) -> None:
        response = await client.get(f"/forecasts/products/{code}")  # httpx encodes it
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["product_id"] == code
        name = {"85123A": "Product_8", "BANK CHARGES": "Product_11", "+4": "Product_4"}
        assert body["product_name"] == name[code]
        days = [(d["date"], d["quantity"]) for d in body["items"]]
        assert len(days) == 7
        assert days == await stored_days(engine, code)

    async def test_a_coded_best_seller_is_backtested_and_a_new_one_profiled(
        self, client: httpx.AsyncClient, forecast: dict[str, Any]
    ) -> None:
        seller = (await client.get("/forecasts/products/85123A")).json()
        assert seller["model"] != "category_profile"
        assert seller["accuracy"]["mase"] is not None
        new = (await client.get("/forecasts/products/BANK CHARGES")).json()
        assert new["model"] == "category_profile"

    async def test_integer_ids_answer_as_before(
        self, client: httpx.AsyncClient, forecast: dict[str, Any]
    ) -> None:
        body = (await client.get(f"/forecasts/products/{INTEGER}")).json()
        assert body["product_id"] == INTEGER
        response = await client.get("/forecasts/products/999999")
        error = assert_error(response, 404, "no_forecast")
        assert error["details"] == {"product_id": 999999}

    @pytest.mark.parametrize(
        ("written", "shown"),
        [
            ("NOPE", "NOPE"),
            ("85123a", "85123a"),  # codes are as written: case counts
            ("8", 8),  # the integer id product 8 had before it was coded: no such product
            ("03", "03"),  # not canonical: a code, not product 3
            ("2147483648", "2147483648"),  # past int4: a code
        ],
    )
    async def test_an_unknown_id_is_no_forecast(
        self, client: httpx.AsyncClient, forecast: dict[str, Any], written: str, shown: int | str
    ) -> None:
        error = assert_error(await client.get(f"/forecasts/products/{written}"), 404, "no_forecast")
        assert error["details"] == {"product_id": shown}
        history = await client.get(f"/forecasts/products/{written}/history")
        error = assert_error(history, 404, "no_forecast")
        assert error["details"] == {"product_id": shown}

    async def test_a_key_is_never_an_id(
        self, client: httpx.AsyncClient, engine: AsyncEngine, forecast: dict[str, Any]
    ) -> None:
        async with engine.connect() as conn:
            key: int = (
                await conn.execute(text("SELECT product_id FROM products WHERE code = '85123A'"))
            ).scalar_one()
        assert key < 0
        assert_error(await client.get(f"/forecasts/products/{key}"), 404, "no_forecast")
        history = await client.get(f"/forecasts/products/{key}/history")
        assert_error(history, 404, "no_forecast")

    async def test_a_coded_product_csv_is_named_safely(
        self, client: httpx.AsyncClient, forecast: dict[str, Any]
    ) -> None:
        response = await client.get("/forecasts/products/BANK CHARGES", params={"format": "csv"})
        assert response.status_code == 200
        disposition = response.headers["content-disposition"]
        assert disposition == 'attachment; filename="forecast_product_BANK_CHARGES.csv"'
        assert response.text.splitlines()[0] == "model,date,quantity,lo_80,hi_80,lo_95,hi_95"
        assert len(response.text.splitlines()) == 1 + 7
        response = await client.get(f"/forecasts/products/{INTEGER}", params={"format": "csv"})
        assert (
            f'filename="forecast_product_{INTEGER}.csv"' in response.headers["content-disposition"]
        )

    async def test_the_export_shows_codes_as_written(
        self, client: httpx.AsyncClient, forecast: dict[str, Any]
    ) -> None:
        response = await client.get("/exports/predicted_product_demand.csv")
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert len(rows) == 7 * 12
        by_id: dict[str, list[dict[str, str]]] = {}
        for row in rows:
            by_id.setdefault(row["product_id"], []).append(row)
        # The formula-like code is escaped as every text cell is; no key shows.
        assert set(by_id) == {"85123A", "BANK CHARGES", "'+4"} | {
            str(i) for i in (1, 2, 3, 5, 6, 7, 9, 10, 12)
        }
        body = (await client.get("/forecasts/products/85123A")).json()
        assert [(r["date"], float(r["quantity"])) for r in by_id["85123A"]] == [
            (d["date"], d["quantity"]) for d in body["items"]
        ]
        assert {r["product_name"] for r in by_id["85123A"]} == {"Product_8"}

    async def test_a_coded_products_history_is_read_by_its_code(
        self, client: httpx.AsyncClient, forecast: dict[str, Any]
    ) -> None:
        """What the dashboard's chart draws before a coded product's forecast."""
        for code in CODES.values():
            response = await client.get(f"/forecasts/products/{quote(code, safe='')}/history")
            assert response.status_code == 200, (code, response.text[:200])
            assert response.json()["items"], code

    async def test_accuracy_lists_no_product(
        self, client: httpx.AsyncClient, forecast: dict[str, Any]
    ) -> None:
        """Accuracy is pooled per level and model: no product id (key or code) in it."""
        body = (await client.get("/forecasts/accuracy")).json()
        assert body["items"]
        assert all("product_id" not in item for item in body["items"])
        assert "85123A" not in (await client.get("/forecasts/accuracy?format=csv")).text
