"""Baskets (issue 27, item 3): rows that share an `order_id` are lines of one order,
counted once per day in the KPIs, the average ticket and daily revenue, however many
uploads bring their lines."""

from __future__ import annotations

import httpx

from tests.conftest import PRODUCTS, Db
from tests.helpers import counts, upload

HEADER = "id,product_id,quantity,created_date,order_id\n"
# Two baskets on 2024-12-01 (A: three lines, B: one) and a line of its own; on
# 2024-12-02 three lines of their own.
LINES = (
    HEADER + "1,1,1,2024-12-01,A\n"
    "2,2,1,2024-12-01,A\n"
    "3,3,1,2024-12-01,A\n"
    "4,1,1,2024-12-01,B\n"
    "5,1,1,2024-12-01,\n"
    "6,1,1,2024-12-02,\n"
    "7,1,1,2024-12-02,\n"
    "8,1,1,2024-12-02,\n"
)


async def _orders_per_day(db: Db) -> dict[str, int]:
    return dict(await db.rows("SELECT created_date::text, orders FROM daily_sales ORDER BY 1"))


class TestBaskets:
    async def test_lines_of_one_order_count_once(self, client: httpx.AsyncClient, db: Db) -> None:
        await upload(client, "products", PRODUCTS)
        report = (await upload(client, "orders", LINES)).json()
        assert counts(report) == (8, 0, 0, 0)
        assert await _orders_per_day(db) == {"2024-12-01": 3, "2024-12-02": 3}
        # Busiest day: a tie of 3 orders, the earliest wins (counting lines, 12-01 had 5).
        kpis = (await client.get("/kpis")).json()
        assert kpis["max_order_date"] == {"date": "2024-12-01", "orders": 3}
        daily = (await client.get("/insights/daily-revenue")).json()["items"]
        assert [d["orders"] for d in daily] == [3, 3]
        await db.assert_rollups_exact()

    async def test_a_basket_over_several_uploads_and_a_file_twice(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        await upload(client, "products", PRODUCTS)
        first = HEADER + "1,1,1,2024-12-01,A\n2,2,1,2024-12-01,A\n"
        second = HEADER + "3,3,1,2024-12-01,A\n4,1,1,2024-12-01,B\n"
        await upload(client, "orders", first)
        assert await _orders_per_day(db) == {"2024-12-01": 1}
        await upload(client, "orders", second)
        assert await _orders_per_day(db) == {"2024-12-01": 2}
        report = (await upload(client, "orders", second)).json()
        assert counts(report) == (0, 0, 2, 0)
        assert await _orders_per_day(db) == {"2024-12-01": 2}
        await db.assert_rollups_exact()

    async def test_updates_move_lines_between_baskets_and_days(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        await upload(client, "products", PRODUCTS)
        await upload(client, "orders", LINES)
        # Line 4 joins A (B is gone), line 5 joins A too, line 6 becomes basket C.
        changed = HEADER + "4,1,1,2024-12-01,A\n5,1,1,2024-12-01,A\n6,1,1,2024-12-02,C\n"
        report = (await upload(client, "orders", changed, on_conflict="update")).json()
        assert counts(report) == (0, 3, 0, 0)
        assert await _orders_per_day(db) == {"2024-12-01": 1, "2024-12-02": 3}
        # A file without the column keeps each line's basket; moving A's line 1 to
        # 2024-12-03 makes A an order on both days.
        moved = "id,product_id,quantity,created_date\n1,1,1,2024-12-03\n"
        report = (await upload(client, "orders", moved, on_conflict="update")).json()
        assert counts(report) == (0, 1, 0, 0)
        assert await _orders_per_day(db) == {"2024-12-01": 1, "2024-12-02": 3, "2024-12-03": 1}
        assert await db.rows("SELECT basket FROM orders WHERE order_id = 1") == [("A",)]
        await db.assert_rollups_exact()

    async def test_the_average_ticket_is_revenue_per_order(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        await upload(client, "products", PRODUCTS)
        await upload(client, "orders", LINES)
        [(revenue,)] = await db.rows("SELECT sum(revenue_brl) FROM daily_sales")
        ticket = (await client.get("/insights/average-ticket")).json()
        assert ticket["orders"] == 6
        assert ticket["average_ticket_brl"] == str((revenue / 6).quantize(revenue))

    async def test_an_order_id_is_text_of_at_most_64_characters(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        await upload(client, "products", PRODUCTS)
        content = HEADER + f"1,1,1,2024-12-01,{'x' * 65}\n2,1,1,2024-12-01,  C536379  \n"
        report = (await upload(client, "orders", content)).json()
        assert counts(report) == (1, 0, 0, 1)
        assert report["rejects_by_code"] == {"too_long": 1}
        assert await db.rows("SELECT basket FROM orders") == [("C536379",)]
