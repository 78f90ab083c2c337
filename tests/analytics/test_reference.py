"""Every figure of ../shared/reference/README.md, from the reference files."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import httpx

from tests.fx.fake import ASSESSMENT_RATE


class TestKpis:
    async def test_reference_kpis(self, reference: httpx.AsyncClient) -> None:
        body = (await reference.get("/kpis")).json()
        assert body["max_order_date"] == {"date": "2024-12-06", "orders": 10}
        usd = (Decimal("891.80") * Decimal(ASSESSMENT_RATE)).quantize(
            Decimal("0.01"), ROUND_HALF_UP
        )
        assert body["most_demanded_product"] == {
            "product_id": 5,
            "product_name": "Product_5",
            "quantity": 20,
            "sales_brl": "891.80",
            "sales_usd": str(usd),
        }
        assert body["most_demanded_product"]["sales_usd"] == "164.95"
        assert body["top_categories"] == [
            {"category": "Shirts", "quantity": 50},
            {"category": "Jackets", "quantity": 30},
            {"category": "Pants", "quantity": 29},
        ]
        assert body["fx"]["rate"] == ASSESSMENT_RATE
        assert body["fx"]["mode"] == "latest"
        assert body["period"] == {"start": "2024-12-01", "end": "2024-12-10"}


class TestInsights:
    async def test_average_ticket(self, reference: httpx.AsyncClient) -> None:
        body = (await reference.get("/insights/average-ticket")).json()
        assert body["orders"] == 50
        assert body["revenue_brl"] == "7734.70"
        assert body["average_ticket_brl"] == "154.69"

    async def test_top_growth_previous_sale(self, reference: httpx.AsyncClient) -> None:
        body = (
            await reference.get("/insights/top-growth", params={"basis": "previous_sale"})
        ).json()
        assert body["items"] == [
            {
                "product_id": 17,
                "product_name": "Product_17",
                "date": "2024-12-09",
                "previous_date": "2024-12-05",
                "quantity": 6,
                "previous_quantity": 1,
                "growth": 5,
            }
        ]

    async def test_top_growth_calendar(self, reference: httpx.AsyncClient) -> None:
        body = (await reference.get("/insights/top-growth")).json()
        [top] = body["items"]
        assert (top["product_name"], top["date"], top["growth"]) == ("Product_20", "2024-12-06", 12)
        assert (top["previous_date"], top["previous_quantity"], top["quantity"]) == (
            "2024-12-05",
            0,
            12,
        )

    async def test_daily_revenue_is_zero_filled(self, reference: httpx.AsyncClient) -> None:
        body = (await reference.get("/insights/daily-revenue")).json()
        days = [i["date"] for i in body["items"]]
        assert days == [f"2024-12-{d:02d}" for d in range(1, 11)]
        empty = {i["date"]: i for i in body["items"] if i["orders"] == 0}
        assert sorted(empty) == ["2024-12-04", "2024-12-08"]
        assert empty["2024-12-04"]["revenue_brl"] == "0.00"
        assert sum(Decimal(i["revenue_brl"]) for i in body["items"]) == Decimal("7734.70")
