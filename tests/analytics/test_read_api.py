"""The read API on data made for its corners: ties, gaps, filters, rounding, formula-like
names, pagination, formats, FX modes and an empty database."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import httpx
import pytest

from tests.fx.fake import FakeFreeCurrencyApi
from tests.helpers import assert_error, upload

PRODUCTS = """id,name,category,price
1,Alpha,Bags,10.00
2,=SUM(A1:A9),Hats,0.01
3,Gamma,Bags,5.00
4,Delta,Coats,2.50
"""
# Day 1: 2 orders; day 2: none; day 3: 2 orders (ties day 1 for busiest); day 5: 1.
# Units: product 1 = 4, product 3 = 4 (tie: lowest id wins), product 2 = 1, product 4 = 1.
ORDERS = """id,product_id,quantity,created_date
10,1,1,2024-03-01
11,3,3,2024-03-01
12,1,3,2024-03-03
13,2,1,2024-03-03
14,3,1,2024-03-05
15,4,1,2024-03-05
"""


@pytest.fixture
async def shop(api: httpx.AsyncClient) -> httpx.AsyncClient:
    assert (await upload(api, "products", PRODUCTS)).status_code == 201
    assert (await upload(api, "orders", ORDERS)).status_code == 201
    return api


class TestKpisCorners:
    async def test_ties(self, shop: httpx.AsyncClient) -> None:
        body = (await shop.get("/kpis")).json()
        assert body["max_order_date"] == {"date": "2024-03-01", "orders": 2}  # tie: earliest
        assert body["most_demanded_product"]["product_id"] == 1  # 4 units each: lowest id
        assert body["most_demanded_product"]["sales_brl"] == "40.00"
        # Bags 8, then Coats 1 and Hats 1 tied: by name.
        assert body["top_categories"] == [
            {"category": "Bags", "quantity": 8},
            {"category": "Coats", "quantity": 1},
            {"category": "Hats", "quantity": 1},
        ]

    async def test_period_filter(self, shop: httpx.AsyncClient) -> None:
        body = (await shop.get("/kpis", params={"start": "2024-03-02", "end": "2024-03-05"})).json()
        assert body["max_order_date"] == {"date": "2024-03-03", "orders": 2}
        assert body["most_demanded_product"]["product_id"] == 1  # 3 units in the period
        assert body["most_demanded_product"]["quantity"] == 3
        assert body["period"] == {"start": "2024-03-03", "end": "2024-03-05"}

    async def test_empty_database(self, api: httpx.AsyncClient) -> None:
        body = (await api.get("/kpis")).json()
        assert body == {
            "max_order_date": None,
            "most_demanded_product": None,
            "top_categories": [],
            "fx": None,
            "period": {"start": None, "end": None},
        }
        assert (await api.get("/insights/daily-revenue")).json()["items"] == []
        ticket = (await api.get("/insights/average-ticket")).json()
        assert (ticket["orders"], ticket["average_ticket_brl"]) == (0, None)
        assert (await api.get("/insights/top-growth")).json()["items"] == []
        categories = (await api.get("/insights/top-categories")).json()
        assert categories == {"items": [], "other": None}
        assert (await api.get("/orders")).json() == {"items": [], "next_cursor": None, "fx": None}
        export = (await api.get("/exports/order_full_information.csv")).text
        assert export == "order_created_date,order_id,product_name,quantity,total_price\n"


class TestInsightsCorners:
    async def test_daily_revenue_zero_fill_and_average(self, shop: httpx.AsyncClient) -> None:
        items = (await shop.get("/insights/daily-revenue")).json()["items"]
        assert [(i["date"], i["orders"], i["revenue_brl"]) for i in items] == [
            ("2024-03-01", 2, "25.00"),
            ("2024-03-02", 0, "0.00"),
            ("2024-03-03", 2, "30.01"),
            ("2024-03-04", 0, "0.00"),
            ("2024-03-05", 2, "7.50"),
        ]
        # Mean of the day and up to six before it: (25 + 0 + 30.01) / 3 = 18.336…
        assert items[2]["revenue_brl_7d_avg"] == "18.34"

    async def test_daily_revenue_pages_and_csv(self, shop: httpx.AsyncClient) -> None:
        first = (await shop.get("/insights/daily-revenue", params={"limit": 2})).json()
        second = (
            await shop.get(
                "/insights/daily-revenue", params={"limit": 2, "cursor": first["next_cursor"]}
            )
        ).json()
        assert [i["date"] for i in first["items"] + second["items"]] == [
            "2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04",
        ]  # fmt: skip
        response = await shop.get("/insights/daily-revenue", params={"format": "csv"})
        rows = list(csv.reader(io.StringIO(response.text)))
        assert rows[0] == [
            "date",
            "orders",
            "quantity",
            "revenue_brl",
            "revenue_usd",
            "revenue_brl_7d_avg",
        ]
        assert len(rows) == 6
        assert response.headers["x-fx-rate"]

    async def test_top_categories_and_the_others_summed(self, shop: httpx.AsyncClient) -> None:
        """The dashboard's category chart: the top `limit`, the rest as one figure."""
        one = (await shop.get("/insights/top-categories", params={"limit": 1})).json()
        # Bags 8, then Coats 1 and Hats 1 tied: by name, summed in `other`.
        assert one == {
            "items": [{"category": "Bags", "quantity": 8}],
            "other": {"categories": 2, "quantity": 2},
        }
        two = (await shop.get("/insights/top-categories", params={"limit": 2})).json()
        assert [c["category"] for c in two["items"]] == ["Bags", "Coats"]
        assert two["other"] == {"categories": 1, "quantity": 1}
        every = (await shop.get("/insights/top-categories")).json()  # ten by default
        assert [c["quantity"] for c in every["items"]] == [8, 1, 1]
        assert every["other"] is None
        period = {"start": "2024-03-05", "end": "2024-03-05", "limit": "1"}
        day = (await shop.get("/insights/top-categories", params=period)).json()
        assert day == {
            "items": [{"category": "Bags", "quantity": 1}],
            "other": {"categories": 1, "quantity": 1},
        }
        response = await shop.get("/insights/top-categories", params={"limit": 1, "format": "csv"})
        assert response.text.splitlines() == ["category,quantity,categories", "Bags,8,1", ",2,2"]

    async def test_top_growth_ties_and_limit(self, shop: httpx.AsyncClient) -> None:
        items = (await shop.get("/insights/top-growth", params={"limit": 3})).json()["items"]
        # Day 3: product 1 grows 0 → 3 and product 2 grows 0 → 1; day 5: products 3 and 4 +1.
        assert [(i["product_id"], i["date"], i["growth"]) for i in items] == [
            (1, "2024-03-03", 3),
            (2, "2024-03-03", 1),
            (3, "2024-03-05", 1),
        ]
        previous = (
            await shop.get("/insights/top-growth", params={"basis": "previous_sale", "limit": 5})
        ).json()["items"]
        # Only products 1 (1 → 3) and 3 (3 → 1) sold on two days.
        assert [(i["product_id"], i["previous_date"], i["growth"]) for i in previous] == [
            (1, "2024-03-01", 2),
            (3, "2024-03-01", -2),
        ]


class TestOrders:
    async def test_items_and_usd(self, shop: httpx.AsyncClient) -> None:
        body = (await shop.get("/orders", params={"limit": 2})).json()
        assert body["items"][0] == {
            "order_id": 10,
            "order_created_date": "2024-03-01",
            "product_id": 1,
            "product_name": "Alpha",
            "category": "Bags",
            "quantity": 1,
            "unit_price_brl": "10.00",
            "total_price_brl": "10.00",
            "total_price_usd": "1.85",  # 10 × 0.184965 = 1.84965
        }
        assert body["fx"]["rate"] == "0.184965"
        assert body["next_cursor"]

    async def test_pagination_walks_everything_once(self, shop: httpx.AsyncClient) -> None:
        seen, cursor = [], None
        while True:
            params = {"limit": 4, **({"cursor": cursor} if cursor else {})}
            body = (await shop.get("/orders", params=params)).json()
            seen += [i["order_id"] for i in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert seen == [10, 11, 12, 13, 14, 15]

    @pytest.mark.parametrize(
        ("params", "ids"),
        [
            ({"start": "2024-03-03"}, [12, 13, 14, 15]),
            ({"end": "2024-03-01"}, [10, 11]),
            ({"start": "2024-03-02", "end": "2024-03-02"}, []),
            ({"product_id": 3}, [11, 14]),
            ({"category": "Bags"}, [10, 11, 12, 14]),
            ({"category": "Bags", "start": "2024-03-04"}, [14]),
            ({"category": "' OR 1=1 --"}, []),
        ],
    )
    async def test_filters(
        self, shop: httpx.AsyncClient, params: dict[str, str], ids: list[int]
    ) -> None:
        body = (await shop.get("/orders", params=params)).json()
        assert [i["order_id"] for i in body["items"]] == ids
        rows = list(
            csv.reader(
                io.StringIO((await shop.get("/orders", params={**params, "format": "csv"})).text)
            )
        )
        assert [int(r[0]) for r in rows[1:]] == ids

    async def test_csv_streams_every_row_escaped(self, shop: httpx.AsyncClient) -> None:
        response = await shop.get("/orders", headers={"Accept": "text/csv"})
        assert response.headers["content-disposition"] == 'attachment; filename="orders.csv"'
        assert response.headers["x-fx-rate"] == "0.184965"
        rows = list(csv.reader(io.StringIO(response.text)))
        assert rows[0][0] == "order_id"
        formula = next(r for r in rows if r[0] == "13")
        assert formula[3] == "'=SUM(A1:A9)"
        json_name = (await shop.get("/orders", params={"product_id": 2})).json()["items"][0][
            "product_name"
        ]
        assert json_name == "=SUM(A1:A9)"  # JSON is data, not a spreadsheet


class TestRounding:
    async def test_half_away_from_zero(
        self, api: httpx.AsyncClient, fake_fx: FakeFreeCurrencyApi
    ) -> None:
        fake_fx.latest_rate = "0.5"
        await upload(api, "products", "id,name,category,price\n1,Penny,Coins,0.01\n")
        await upload(api, "orders", "id,product_id,quantity,created_date\n1,1,1,2024-01-01\n")
        # 0.01 × 0.5 = 0.005 → 0.01 (banker's rounding would say 0.00).
        assert (await api.get("/orders")).json()["items"][0]["total_price_usd"] == "0.01"
        rows = list(
            csv.reader(
                io.StringIO((await api.get("/exports/fixed_order_full_information.csv")).text)
            )
        )
        assert rows[1][-1] == "0.01"
        assert (await api.get("/kpis")).json()["most_demanded_product"]["sales_usd"] == "0.01"


class TestFxModes:
    async def test_order_date_mode(
        self, shop: httpx.AsyncClient, fake_fx: FakeFreeCurrencyApi
    ) -> None:
        fake_fx.rates = {"2024-03-01": "0.2", "2024-03-04": "0.4", "2024-03-05": "0.5"}
        # 2024-03-03 has no published rate: it takes 2024-03-01's.
        body = (await shop.get("/orders", params={"fx_mode": "order_date"})).json()
        usd = {i["order_id"]: i["total_price_usd"] for i in body["items"]}
        assert usd[10] == "2.00"  # 10.00 × 0.2
        assert usd[12] == "6.00"  # 30.00 × 0.2 (Friday's rate, say)
        assert usd[14] == "2.50"  # 5.00 × 0.5
        assert body["fx"]["mode"] == "order_date"
        assert body["fx"]["rate"] is None
        assert body["fx"]["days"] == 3
        kpis = (await shop.get("/kpis", params={"fx_mode": "order_date"})).json()
        # Product 1: 10.00 on day 1 × 0.2 + 30.00 on day 3 × 0.2.
        assert kpis["most_demanded_product"]["sales_usd"] == "8.00"
        response = await shop.get("/orders", params={"fx_mode": "order_date", "format": "csv"})
        assert response.headers["x-fx-rate"] == "order_date"
        assert response.headers["x-fx-mode"] == "order_date"
        rows = {r[0]: r for r in csv.reader(io.StringIO(response.text))}
        assert rows["14"][-1] == "2.50"

    async def test_no_rate_is_503_only_where_usd_is_needed(
        self, shop: httpx.AsyncClient, fake_fx: FakeFreeCurrencyApi
    ) -> None:
        fake_fx.mode = "fail500"
        for path in ("/kpis", "/orders", "/insights/daily-revenue", "/insights/average-ticket",
                     "/exports/fixed_order_full_information.csv", "/exports/kpi_product_orders.csv"):  # fmt: skip
            assert_error(await shop.get(path), 503, "fx_unavailable")
        assert (await shop.get("/insights/top-growth")).status_code == 200
        assert (await shop.get("/exports/order_full_information.csv")).status_code == 200


class TestBadParameters:
    @pytest.mark.parametrize(
        ("path", "params", "status", "code"),
        [
            ("/kpis", {"start": "2024-03-05", "end": "2024-03-01"}, 422, "invalid_period"),
            ("/orders", {"start": "2024-13-01"}, 422, "validation_error"),
            ("/orders", {"end": "yesterday"}, 422, "validation_error"),
            ("/orders", {"limit": "1001"}, 422, "validation_error"),
            ("/orders", {"limit": "0"}, 422, "validation_error"),
            ("/orders", {"limit": "-5"}, 422, "validation_error"),
            ("/orders", {"cursor": "WyIyMDI0LTAyLTMwIiwxXQ"}, 422, "invalid_cursor"),
            ("/orders", {"cursor": "not-a-cursor"}, 422, "invalid_cursor"),
            ("/orders", {"product_id": "x" * 65}, 422, "validation_error"),
            ("/orders", {"format": "xlsx"}, 422, "validation_error"),
            ("/orders", {"fx_mode": "yesterday"}, 422, "validation_error"),
            ("/insights/daily-revenue", {"cursor": "WyJub3BlIl0"}, 422, "invalid_cursor"),
            ("/insights/top-growth", {"basis": "weekly"}, 422, "validation_error"),
            ("/insights/top-growth", {"limit": "100000"}, 422, "validation_error"),
        ],
    )
    async def test_rejected(
        self, shop: httpx.AsyncClient, path: str, params: dict[str, str], status: int, code: str
    ) -> None:
        assert_error(await shop.get(path, params=params), status, code)

    @pytest.mark.parametrize(
        "path", ["/kpis", "/orders", "/insights/top-growth", "/insights/average-ticket"]
    )
    async def test_unsupported_accept_is_406(self, shop: httpx.AsyncClient, path: str) -> None:
        assert_error(
            await shop.get(path, headers={"Accept": "application/xml"}), 406, "not_acceptable"
        )
        assert (
            (await shop.get(path, headers={"Accept": "text/csv"}))
            .headers["content-type"]
            .startswith("text/csv")
        )
        assert (
            await shop.get(path, headers={"Accept": "application/json, text/plain"})
        ).status_code == 200


def test_money_examples() -> None:
    from app.kit.money import money

    assert money(Decimal("222.95000000000002")) == "222.95"
    assert money(Decimal("0.005")) == "0.01"
    assert money(Decimal("-0.005")) == "-0.01"
    assert money(Decimal("2.675")) == "2.68"


class TestGrowthDrops:
    async def test_days_after_a_sale_rank_when_growth_runs_out(
        self, api: httpx.AsyncClient
    ) -> None:
        await upload(api, "products", "id,name,category,price\n1,A,X,1\n2,B,X,1\n")
        await upload(
            api,
            "orders",
            "id,product_id,quantity,created_date\n"
            "1,1,5,2024-01-01\n2,2,1,2024-01-01\n3,2,1,2024-01-03\n",
        )
        items = (await api.get("/insights/top-growth", params={"limit": 3})).json()["items"]
        assert [(i["product_id"], i["date"], i["growth"]) for i in items] == [
            (2, "2024-01-03", 1),  # 0 on the 2nd → 1
            (2, "2024-01-02", -1),  # a day without sales after one with 1
            (1, "2024-01-02", -5),
        ]

    async def test_kept_growth_survives_updates_and_deletes(self, api: httpx.AsyncClient) -> None:
        await upload(api, "products", "id,name,category,price\n1,A,X,1\n")
        await upload(
            api,
            "orders",
            "id,product_id,quantity,created_date\n1,1,1,2024-01-01\n2,1,4,2024-01-02\n3,1,9,2024-01-03\n",
        )
        # Move order 2 away from the 2nd: the 3rd now grows from 0, not from 4.
        await upload(
            api,
            "orders",
            "id,product_id,quantity,created_date\n2,1,4,2024-01-05\n",
            on_conflict="update",
        )
        top = (await api.get("/insights/top-growth")).json()["items"][0]
        assert (top["date"], top["previous_quantity"], top["growth"]) == ("2024-01-03", 0, 9)
        previous = (
            await api.get("/insights/top-growth", params={"basis": "previous_sale"})
        ).json()["items"][0]
        assert (previous["date"], previous["previous_date"], previous["growth"]) == (
            "2024-01-03",
            "2024-01-01",
            8,
        )


async def test_nul_in_a_filter_is_422_not_500(shop: httpx.AsyncClient) -> None:
    assert_error(await shop.get("/orders", params={"category": "a\x00b"}), 422, "validation_error")


async def test_many_concurrent_cold_usd_answers_do_not_starve_the_pool(
    shop: httpx.AsyncClient, fake_fx: FakeFreeCurrencyApi
) -> None:
    """Each request holds a connection while it waits for the rate; the one fetching the
    rate must still get one (FX has a pool of its own)."""
    import asyncio

    fake_fx.delay = 0.3
    fake_fx.calls.clear()
    answers = await asyncio.gather(*(shop.get("/kpis") for _ in range(60)))
    assert {a.status_code for a in answers} == {200}
