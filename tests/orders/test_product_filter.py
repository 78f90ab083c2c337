"""GET /orders?product_id=: a product's orders, named by its id as the file wrote it (an
integer, or a text id: issue 27, item 4), in JSON pages and in the streamed CSV alike."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import assert_error, upload

TEXT = {"ids": "text"}
PRODUCTS = (
    "id,name,category,price\n"
    "85123A,Heart,Decor,2.55\n"
    "71053,Lantern,Decor,3.39\n"  # an integer: its own key
    "007,Bond,Spies,1.00\n"  # not canonical: a code, not product 7
    "7,Seven,Spies,1.00\n"
    "2147483648,Big,Misc,1.00\n"  # past int4: a code
    "BANK CHARGES,Fee,Misc,1.00\n"
)
ORDERS = (
    "id,product_id,quantity,created_date\n"
    "L-1,85123A,2,2024-12-01\n"
    "2,71053,1,2024-12-01\n"
    "L-3,85123A,1,2024-12-02\n"
    "4,007,5,2024-12-02\n"
    "5,7,1,2024-12-02\n"
    "6,2147483648,1,2024-12-03\n"
    "7,BANK CHARGES,1,2024-12-03\n"
    "L-8,85123A,4,2024-12-04\n"
    "9,BANK CHARGES,2,2024-12-04\n"
    "10,BANK CHARGES,1,2024-12-05\n"
)


@pytest.fixture
async def shop(client: httpx.AsyncClient) -> httpx.AsyncClient:
    for kind, content in (("products", PRODUCTS), ("orders", ORDERS)):
        report = (await upload(client, kind, content, params=TEXT)).json()
        assert report["rows_rejected"] == 0, report
    return client


async def both(client: httpx.AsyncClient, params: dict[str, Any]) -> tuple[list[Any], list[str]]:
    """The (order id, product id) of each order in the JSON page and in the CSV."""
    page = (await client.get("/orders", params=params)).json()["items"]
    text = (await client.get("/orders", params={**params, "format": "csv"})).text
    rows = list(csv.DictReader(io.StringIO(text)))
    return (
        [(i["order_id"], i["product_id"]) for i in page],
        [f"{r['order_id']}/{r['product_id']}" for r in rows],
    )


async def pages(client: httpx.AsyncClient, product_id: str) -> list[Any]:
    """The order ids of a product's orders, one page of one order at a time."""
    seen: list[Any] = []
    cursor = None
    while True:
        params = {"product_id": product_id, "limit": "1", **({"cursor": cursor} if cursor else {})}
        response = await client.get("/orders", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += [i["order_id"] for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen


class TestProductFilter:
    @pytest.mark.parametrize(
        ("written", "json", "csv_rows"),
        [
            (
                "85123A",
                [("L-1", "85123A"), ("L-3", "85123A"), ("L-8", "85123A")],
                ["L-1/85123A", "L-3/85123A", "L-8/85123A"],
            ),
            ("71053", [(2, 71053)], ["2/71053"]),  # integers stay JSON numbers
            ("007", [(4, "007")], ["4/007"]),
            ("7", [(5, 7)], ["5/7"]),
            ("2147483648", [(6, "2147483648")], ["6/2147483648"]),
            (
                "BANK CHARGES",
                [(7, "BANK CHARGES"), (9, "BANK CHARGES"), (10, "BANK CHARGES")],
                ["7/BANK CHARGES", "9/BANK CHARGES", "10/BANK CHARGES"],
            ),
        ],
    )
    async def test_a_product_by_its_id_as_written(
        self,
        shop: httpx.AsyncClient,
        written: str,
        json: list[tuple[Any, Any]],
        csv_rows: list[str],
    ) -> None:
        assert await both(shop, {"product_id": written}) == (json, csv_rows)

    @pytest.mark.parametrize(
        "written",
        [
            "NOPE",
            "85123a",  # as written: case counts
            "07",  # neither 007 nor 7
            "+7",
            "7.0",
            " 7",
            "99999999999",  # a code no product has
        ],
    )
    async def test_an_id_no_product_has_matches_nothing(
        self, shop: httpx.AsyncClient, written: str
    ) -> None:
        assert await both(shop, {"product_id": written}) == ([], [])

    async def test_a_key_is_never_an_id(self, shop: httpx.AsyncClient, engine: AsyncEngine) -> None:
        async with engine.connect() as conn:
            key: int = (
                await conn.execute(text("SELECT product_id FROM products WHERE code = '85123A'"))
            ).scalar_one()
        assert key < 0
        assert await both(shop, {"product_id": str(key)}) == ([], [])

    async def test_pages_and_other_filters_keep_to_the_product(
        self, shop: httpx.AsyncClient
    ) -> None:
        assert await pages(shop, "BANK CHARGES") == [7, 9, 10]
        dated = {"product_id": "85123A", "start": "2024-12-02", "end": "2024-12-03"}
        assert await both(shop, dated) == ([("L-3", "85123A")], ["L-3/85123A"])
        other = {"product_id": "85123A", "category": "Misc"}
        assert await both(shop, other) == ([], [])
        assert await both(shop, {"product_id": "7", "category": "Spies"}) == ([(5, 7)], ["5/7"])

    async def test_pages_through_coded_lines(self, shop: httpx.AsyncClient) -> None:
        assert await pages(shop, "85123A") == ["L-1", "L-3", "L-8"]

    @pytest.mark.parametrize("written", ["", "x" * 65, "a\x00b"])
    async def test_refused(self, shop: httpx.AsyncClient, written: str) -> None:
        for fmt in ("json", "csv"):
            response = await shop.get("/orders", params={"product_id": written, "format": fmt})
            assert_error(response, 422, "validation_error")
