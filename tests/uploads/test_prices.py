"""Price history (issue 27, item 1): an order is valued at the price in effect on its
date, or at the unit price it was charged; a price change dated in the past re-values
exactly the orders it covers, and every answer says so."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal
from typing import Any

import httpx

from app.uploads.service import business_date
from tests.conftest import Db
from tests.helpers import assert_error, counts, upload

PRODUCTS = "id,name,category,price,effective_from\n1,Shirt,Shirts,10.00,2024-01-01\n"
ORDERS = (
    "id,product_id,quantity,created_date\n"
    "1,1,1,2023-12-31\n"  # before the first price: the first price holds
    "2,1,2,2024-03-01\n"
    "3,1,3,2024-06-01\n"
    "4,1,4,2024-09-01\n"
)
HEADER = "id,name,category,price,effective_from\n"


async def _revenue(db: Db) -> dict[str, Decimal]:
    rows = await db.rows("SELECT created_date::text, revenue_brl FROM daily_sales ORDER BY 1")
    return dict(rows)


async def _prices(db: Db, product_id: int = 1) -> list[tuple[Any, ...]]:
    return await db.rows(
        "SELECT valid_from::text, valid_to::text, applies_from::text, price"
        " FROM product_prices WHERE product_id = :p ORDER BY valid_from",
        p=product_id,
    )


async def _loaded(client: httpx.AsyncClient) -> None:
    assert (await upload(client, "products", PRODUCTS)).status_code == 201
    assert (await upload(client, "orders", ORDERS)).status_code == 201


class TestPriceChanges:
    async def test_a_dated_change_revalues_exactly_the_days_it_covers(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        await _loaded(client)
        assert await _revenue(db) == {
            "2023-12-31": Decimal("10.00"),
            "2024-03-01": Decimal("20.00"),
            "2024-06-01": Decimal("30.00"),
            "2024-09-01": Decimal("40.00"),
        }
        report = (
            await upload(
                client,
                "products",
                HEADER + "1,Shirt,Shirts,12.00,2024-06-01\n",
                on_conflict="update",
            )
        ).json()
        assert counts(report) == (0, 1, 0, 0)
        assert await _revenue(db) == {
            "2023-12-31": Decimal("10.00"),
            "2024-03-01": Decimal("20.00"),
            "2024-06-01": Decimal("36.00"),
            "2024-09-01": Decimal("48.00"),
        }
        # A change between the two closes at the next one's date.
        await upload(
            client, "products", HEADER + "1,Shirt,Shirts,11.00,2024-03-01\n", on_conflict="update"
        )
        assert await _revenue(db) == {
            "2023-12-31": Decimal("10.00"),
            "2024-03-01": Decimal("22.00"),
            "2024-06-01": Decimal("36.00"),
            "2024-09-01": Decimal("48.00"),
        }
        assert await _prices(db) == [
            ("2024-01-01", "2024-03-01", "-infinity", Decimal("10.00")),
            ("2024-03-01", "2024-06-01", "2024-03-01", Decimal("11.00")),
            ("2024-06-01", "infinity", "2024-06-01", Decimal("12.00")),
        ]
        # The product's price is its latest.
        assert await db.rows("SELECT price FROM products") == [(Decimal("12.00"),)]
        await db.assert_rollups_exact()

    async def test_a_price_dated_before_the_first_becomes_the_first(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        await _loaded(client)
        await upload(
            client, "products", HEADER + "1,Shirt,Shirts,8.00,2023-06-01\n", on_conflict="update"
        )
        # 2023-12-31 and 2024 before its old first's date: the new first price holds there.
        assert (await _revenue(db))["2023-12-31"] == Decimal("8.00")
        assert (await _revenue(db))["2024-03-01"] == Decimal("20.00")
        assert [p[:3] for p in await _prices(db)] == [
            ("2023-06-01", "2024-01-01", "-infinity"),
            ("2024-01-01", "infinity", "2024-01-01"),
        ]
        await db.assert_rollups_exact()

    async def test_the_query_dates_a_whole_file(self, client: httpx.AsyncClient, db: Db) -> None:
        await _loaded(client)
        report = await upload(
            client,
            "products",
            "id,name,category,price\n1,Shirt,Shirts,20.00\n",
            on_conflict="update",
            params={"effective_from": "2024-09-01"},
        )
        assert report.status_code == 201, report.text
        assert (await _revenue(db))["2024-09-01"] == Decimal("80.00")
        assert (await _revenue(db))["2024-06-01"] == Decimal("30.00")
        await db.assert_rollups_exact()

    async def test_an_undated_change_takes_effect_from_the_upload_date(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        await _loaded(client)
        before = await _revenue(db)
        await upload(
            client,
            "products",
            "id,name,category,price\n1,Shirt,Shirts,99.00\n",
            on_conflict="update",
        )
        assert await _revenue(db) == before  # history is not restated
        today = business_date("America/Sao_Paulo").isoformat()
        assert (await _prices(db))[-1] == (today, "infinity", today, Decimal("99.00"))

    async def test_a_same_price_again_is_unchanged(self, client: httpx.AsyncClient, db: Db) -> None:
        await _loaded(client)
        # The price in effect on 2024-05-01 is already 10.00; the undated file's too.
        report = (
            await upload(client, "products", HEADER + "1,Shirt,Shirts,10.00,2024-05-01\n")
        ).json()
        assert counts(report) == (0, 0, 1, 0)
        report = await upload(client, "products", "id,name,category,price\n1,Shirt,Shirts,10\n")
        assert counts(report.json()) == (0, 0, 1, 0)
        assert len(await _prices(db)) == 1

    async def test_a_change_without_on_conflict_update_is_a_conflict_that_says_the_date(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        await _loaded(client)
        report = await upload(client, "products", HEADER + "1,Shirt,Shirts,12.00,2024-06-01\n")
        assert report.json()["rejects_by_code"] == {"conflict": 1}
        rejects = (await client.get(f"/uploads/{report.json()['upload_id']}/rejects")).json()
        assert "price 10.00 on 2024-06-01" in rejects["items"][0]["_error_message"]
        assert len(await _prices(db)) == 1

    async def test_a_price_history_in_one_file(self, client: httpx.AsyncClient, db: Db) -> None:
        content = (
            HEADER + "7,Old name,Hats,5.00,2024-01-01\n"
            "7,New name,Caps,6.00,2024-02-01\n"
            "7,Whatever,Hats,5.00,2024-03-01\n"  # back to 5.00 from March: a row of its own
            "7,Again,Hats,9.00,2024-02-01\n"  # the same product and date: a duplicate
        )
        report = (await upload(client, "products", content)).json()
        assert counts(report) == (3, 0, 0, 1)
        assert report["rejects_by_code"] == {"duplicate_in_file": 1}
        assert [(p[0], p[3]) for p in await _prices(db, 7)] == [
            ("2024-01-01", Decimal("5.00")),
            ("2024-02-01", Decimal("6.00")),
            ("2024-03-01", Decimal("5.00")),
        ]
        # Named by its latest-dated row.
        assert await db.rows("SELECT name, category, price FROM products") == [
            ("Whatever", "Hats", Decimal("5.00"))
        ]

    async def test_effective_from_is_checked_and_belongs_to_products(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        report = (
            await upload(client, "products", HEADER + "1,A,B,1.00,2024-02-30\n2,A,B,1.00,\n")
        ).json()
        assert counts(report) == (1, 0, 0, 1)
        assert report["rejects_by_code"] == {"invalid_date": 1}
        response = await upload(client, "orders", ORDERS, params={"effective_from": "2024-01-01"})
        assert_error(response, 422, "validation_error")


class TestUnitPrices:
    async def test_the_price_charged_wins_and_an_empty_one_is_the_list_price(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        await upload(client, "products", PRODUCTS)
        content = (
            "id,product_id,quantity,created_date,unit_price\n"
            "1,1,2,2024-03-01,7.50\n"
            "2,1,1,2024-03-01,\n"
            "3,1,1,2024-03-01,-1\n"
            "4,1,1,2024-03-01,1.005\n"
        )
        report = (await upload(client, "orders", content)).json()
        assert counts(report) == (2, 0, 0, 2)
        assert report["rejects_by_code"] == {"out_of_range": 1, "invalid_decimal": 1}
        assert await _revenue(db) == {"2024-03-01": Decimal("25.00")}
        # A later price change re-values only the order without a price of its own.
        await upload(
            client, "products", HEADER + "1,Shirt,Shirts,20.00,2024-01-01\n", on_conflict="update"
        )
        assert await _revenue(db) == {"2024-03-01": Decimal("35.00")}
        await db.assert_rollups_exact()

    async def test_an_update_moves_an_order_between_charged_and_listed(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        await _loaded(client)
        charged = "id,product_id,quantity,created_date,unit_price\n2,1,2,2024-03-01,1.00\n"
        report = (await upload(client, "orders", charged, on_conflict="update")).json()
        assert counts(report) == (0, 1, 0, 0)
        assert (await _revenue(db))["2024-03-01"] == Decimal("2.00")
        # A file without the column says nothing of the price charged: it is kept.
        same = "id,product_id,quantity,created_date\n2,1,2,2024-03-01\n"
        report = (await upload(client, "orders", same, on_conflict="update")).json()
        assert counts(report) == (0, 0, 1, 0)
        listed = "id,product_id,quantity,created_date,unit_price\n2,1,2,2024-03-01,\n"
        report = (await upload(client, "orders", listed, on_conflict="update")).json()
        assert counts(report) == (0, 1, 0, 0)
        assert (await _revenue(db))["2024-03-01"] == Decimal("20.00")
        await db.assert_rollups_exact()


class TestAnswers:
    async def test_every_answer_values_orders_at_the_price_of_their_day(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        await _loaded(client)
        await upload(
            client, "products", HEADER + "1,Shirt,Shirts,12.00,2024-06-01\n", on_conflict="update"
        )
        page = (await client.get("/orders", params={"start": "2024-03-01"})).json()["items"]
        assert [(o["order_id"], o["unit_price_brl"], o["total_price_brl"]) for o in page] == [
            (2, "10.00", "20.00"),
            (3, "12.00", "36.00"),
            (4, "12.00", "48.00"),
        ]
        export = (await client.get("/exports/order_full_information.csv")).text
        rows = list(csv.DictReader(io.StringIO(export)))
        assert [r["total_price"] for r in rows] == ["10.00", "20.00", "36.00", "48.00"]
        kpis = (await client.get("/kpis")).json()
        assert kpis["most_demanded_product"]["sales_brl"] == "114.00"
        kpis = (await client.get("/kpis", params={"start": "2024-06-01"})).json()
        assert kpis["most_demanded_product"]["sales_brl"] == "84.00"

    async def test_a_product_shows_its_price_history(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        await _loaded(client)
        await upload(
            client, "products", HEADER + "1,Shirt,Shirts,12.00,2024-06-01\n", on_conflict="update"
        )
        product = (await client.get("/products/1")).json()
        assert product == {
            "product_id": 1,
            "name": "Shirt",
            "category": "Shirts",
            "price": "12.00",
            "units_sold": 10,
            "revenue_brl": "114.00",
            "prices": [
                {"price": "12.00", "valid_from": "2024-06-01", "valid_to": None},
                {"price": "10.00", "valid_from": "2024-01-01", "valid_to": "2024-06-01"},
            ],
        }
        assert_error(await client.get("/products/2"), 404, "product_not_found")
        assert date.fromisoformat(product["prices"][0]["valid_from"]) == date(2024, 6, 1)
