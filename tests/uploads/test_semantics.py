"""Atomic, idempotent, conflict-aware uploads that keep the rollups exact."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from app.analytics import rollups
from tests.conftest import PRODUCTS, REFERENCE, Db, require_reference
from tests.helpers import assert_error, counts, upload

ORDERS = (
    "id,product_id,quantity,created_date\n"
    "1,1,2,'2024-12-01'\n2,2,1,'2024-12-01'\n3,1,5,'2024-12-02'\n4,3,1,'2024-12-04'\n"
)


class TestReferenceData:
    async def test_reference_files_load_without_rejects(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        require_reference()
        products = await upload(
            client, "products", (REFERENCE / "data" / "products.csv").read_bytes()
        )
        assert products.status_code == 201
        assert counts(products.json()) == (20, 0, 0, 0)
        orders = await upload(client, "orders", (REFERENCE / "data" / "orders.csv").read_bytes())
        assert counts(orders.json()) == (50, 0, 0, 0)
        assert await db.rows(
            "SELECT count(*), sum(o.quantity * p.price) FROM orders o JOIN products p USING (product_id)"
        ) == [(50, Decimal("7734.70"))]
        await db.assert_rollups_exact()


class TestIdempotence:
    async def test_same_files_twice_change_nothing(self, client: httpx.AsyncClient, db: Db) -> None:
        assert counts((await upload(client, "products", PRODUCTS)).json()) == (3, 0, 0, 0)
        assert counts((await upload(client, "orders", ORDERS)).json()) == (4, 0, 0, 0)
        before = await db.rows("SELECT * FROM daily_sales ORDER BY 1")
        assert counts((await upload(client, "products", PRODUCTS)).json()) == (0, 0, 3, 0)
        second = (await upload(client, "orders", ORDERS)).json()
        assert counts(second) == (0, 0, 4, 0)
        assert second["status"] == "succeeded"
        assert await db.rows("SELECT * FROM daily_sales ORDER BY 1") == before
        await db.assert_rollups_exact()

    async def test_equal_values_written_differently_are_unchanged(
        self, client: httpx.AsyncClient
    ) -> None:
        await upload(client, "products", PRODUCTS)
        same = "id,name,category,price\n1, Shirt ,Shirts,10\n2,Pants,Pants,20.5\n3,Hat,Hats,5.00\n"
        assert counts((await upload(client, "products", same)).json()) == (0, 0, 3, 0)


class TestConflicts:
    async def test_changed_rows_conflict_by_default(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        await upload(client, "products", PRODUCTS)
        await upload(client, "orders", ORDERS)
        changed = "id,product_id,quantity,created_date\n1,1,9,2024-12-01\n5,2,1,2024-12-05\n"
        report = (await upload(client, "orders", changed)).json()
        assert counts(report) == (1, 0, 0, 1)
        assert report["rejects_by_code"] == {"conflict": 1}
        assert await db.rows("SELECT quantity FROM orders WHERE order_id = 1") == [(2,)]
        await db.assert_rollups_exact()

    async def test_on_conflict_update_replaces_and_keeps_rollups_exact(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        await upload(client, "products", PRODUCTS)
        await upload(client, "orders", ORDERS)
        changed = (
            "id,product_id,quantity,created_date\n"
            "1,2,9,2024-12-03\n"  # moves day and product
            "3,1,5,2024-12-02\n"  # unchanged
            "4,3,1,2024-12-01\n"  # moves its day away: 2024-12-04 has no orders left
        )
        report = (await upload(client, "orders", changed, on_conflict="update")).json()
        assert counts(report) == (0, 2, 1, 0)
        assert await db.rows(
            "SELECT product_id, quantity, created_date::text FROM orders WHERE order_id = 1"
        ) == [(2, 9, "2024-12-03")]
        await db.assert_rollups_exact()
        assert await db.rows(
            "SELECT count(*) FROM daily_sales WHERE created_date = '2024-12-04'"
        ) == [(0,)]

    async def test_a_same_day_price_correction_reprices_stored_sales(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        """Both products uploads are undated, so both set the price from today: the
        correction replaces the first price, which holds for every earlier date too
        (dated changes: tests/uploads/test_prices.py)."""
        await upload(client, "products", PRODUCTS)
        await upload(client, "orders", ORDERS)
        conflict = (
            await upload(client, "products", "id,name,category,price\n1,Shirt,Shirts,11.00\n")
        ).json()
        assert conflict["rejects_by_code"] == {"conflict": 1}
        report = (
            await upload(
                client,
                "products",
                "id,name,category,price\n1,Shirt,Tops,11.00\n",
                on_conflict="update",
            )
        ).json()
        assert counts(report) == (0, 1, 0, 0)
        # Order 1 (2 × 11.00) and order 2 (1 × 20.50) on 2024-12-01.
        assert await db.rows(
            "SELECT revenue_brl FROM daily_sales WHERE created_date = '2024-12-01'"
        ) == [(Decimal("42.50"),)]
        await db.assert_rollups_exact()

    async def test_first_valid_occurrence_wins(self, client: httpx.AsyncClient, db: Db) -> None:
        await upload(client, "products", PRODUCTS)
        content = (
            "id,product_id,quantity,created_date\n"
            "1,1,x,2024-12-01\n"  # line 2: invalid, does not count as an occurrence
            "1,1,1,2024-12-01\n"  # line 3: first valid occurrence, loaded
            "1,2,2,2024-12-02\n"  # line 4: duplicate
            "1,1,1,2024-12-01\n"  # line 5: duplicate, even if identical
        )
        report = (await upload(client, "orders", content)).json()
        assert counts(report) == (1, 0, 0, 3)
        assert report["rejects_by_code"] == {"invalid_integer": 1, "duplicate_in_file": 2}
        items = (await client.get(report["rejects_url"])).json()["items"]
        assert [i["_error_message"] for i in items if i["_error_code"] == "duplicate_in_file"] == [
            "id 1 already appears on line 3",
            "id 1 already appears on line 3",
        ]
        assert await db.rows("SELECT product_id, quantity FROM orders") == [(1, 1)]


class TestAtomicity:
    async def test_failure_after_staging_leaves_nothing(
        self, client: httpx.AsyncClient, db: Db, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        await upload(client, "products", PRODUCTS)

        async def explode(conn: Any) -> None:
            raise RuntimeError("injected failure while updating rollups")

        monkeypatch.setattr(rollups, "write", explode)
        bad = ORDERS.replace("4,3,1", "4,99,1")  # a reject too: it must not survive either
        response = await upload(client, "orders", bad)
        assert_error(response, 500, "internal_error")
        assert "injected" not in response.text
        for table in ("orders", "rejects", "daily_sales", "product_daily_sales"):
            assert await db.count(table) == 0, table
        [(status, error)] = await db.rows(
            "SELECT status, error->>'code' FROM uploads WHERE kind = 'orders'"
        )
        assert (status, error) == ("failed", "failed")

    # The statement that inserts the orders, made to fail in the database mid-way.
    BROKEN = {
        "load": ("count(*) AS n,", "count(*) / (count(*) - count(*)) AS n,"),
        "load_whole": ("s.quantity::integer", "(s.quantity / (s.quantity - s.quantity))::integer"),
    }

    @pytest.mark.parametrize("statement", sorted(BROKEN))
    async def test_database_error_mid_merge_is_reported_failed(
        self, client: httpx.AsyncClient, db: Db, monkeypatch: pytest.MonkeyPatch, statement: str
    ) -> None:
        from app.uploads.plan import Plan
        from app.uploads.sql import orders as orders_sql

        await upload(client, "products", PRODUCTS)
        found, failing = self.BROKEN[statement]
        original: Callable[[Plan], str] = getattr(orders_sql, statement)

        def broken(plan: Plan) -> str:
            assert found in original(plan)
            return original(plan).replace(found, failing)

        monkeypatch.setattr(orders_sql, statement, broken)
        if statement == "load":
            # A file whose every row passes would be loaded whole instead.
            monkeypatch.setattr(orders_sql, "may_load_whole", lambda plan: False)
        response = await upload(client, "orders", ORDERS)
        assert_error(response, 500, "internal_error")
        assert await db.count("orders") == 0
        listing = (await client.get("/uploads")).json()["items"]
        assert listing[0]["status"] == "failed"


class TestConcurrency:
    async def test_overlapping_uploads_both_land_as_if_in_sequence(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        await upload(client, "products", PRODUCTS)
        header = "id,product_id,quantity,created_date\n"
        a = header + "".join(
            f"{i},{1 + i % 3},{1 + i % 5},2024-12-{1 + i % 28:02d}\n" for i in range(1, 3001)
        )
        b = header + "".join(
            f"{i},{1 + i % 3},{1 + i % 5},2024-12-{1 + i % 28:02d}\n" for i in range(2001, 5001)
        )
        first, second = await asyncio.gather(
            upload(client, "orders", a), upload(client, "orders", b)
        )
        assert first.status_code == second.status_code == 201
        reports = sorted([first.json(), second.json()], key=lambda r: r["rows_inserted"])
        # Whichever merged second found the 1,000 shared rows already stored, unchanged.
        assert {counts(r) for r in reports} == {(3000, 0, 0, 0), (2000, 0, 1000, 0)}
        assert await db.rows("SELECT count(*), min(order_id), max(order_id) FROM orders") == [
            (5000, 1, 5000)
        ]
        await db.assert_rollups_exact()

    async def test_concurrent_products_and_orders(self, client: httpx.AsyncClient, db: Db) -> None:
        await upload(client, "products", PRODUCTS)
        more = "id,name,category,price\n" + "".join(f"{i},P{i},C,{i}.00\n" for i in range(4, 50))
        orders = "id,product_id,quantity,created_date\n" + "".join(
            f"{i},{1 + i % 3},1,2024-12-01\n" for i in range(1, 500)
        )
        results = await asyncio.gather(
            upload(client, "products", more, on_conflict="update"), upload(client, "orders", orders)
        )
        assert [r.status_code for r in results] == [201, 201]
        await db.assert_rollups_exact()
