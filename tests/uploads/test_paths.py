"""The fast path (PostgreSQL parses the CSV) and the careful path (Python's csv module)
judge every row the same way; the fast path checks keys by set only where allowed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import URL, text

from app import db as app_db
from app.analytics.models import ROLLUP_TABLES
from app.main import create_app
from tests.conftest import make_settings, open_client
from tests.helpers import upload
from tests.uploads.conftest import PRODUCTS, Db

ROWS = [
    "1,1,2,'2024-12-01'",
    "2,2,1,2024-12-01",
    "3, 3 , +4 ,' 2024-12-02 '",
    "4,1,0,2024-12-01",  # out_of_range
    "5,,1,2024-12-01",  # missing_value
    "6,99,1,2024-12-01",  # unknown_product
    "2,1,1,2024-12-03",  # duplicate_in_file
    "7,1,1,2024-02-30",  # invalid_date
    "8,1,1,'2024-13-01'",  # invalid_date
    "9,1,1,2024-1-01",  # invalid_date
    "10,1,-3,2024-12-01",  # out_of_range
    "11,2147483648,1,2024-12-01",  # out_of_range
    "12,1,1,",  # missing_value
    "0,1,1,2024-12-01",  # out_of_range
]


def judged(items: list[dict[str, Any]]) -> list[tuple[int, str, str]]:
    return [(i["_row_number"], i["_error_code"], i["_error_message"]) for i in items]


async def run(
    client: httpx.AsyncClient, content: str
) -> tuple[dict[str, Any], list[tuple[int, str, str]]]:
    report = (await upload(client, "orders", content)).json()
    items = (await client.get(report["rejects_url"])).json()["items"]
    return report, judged(items)


class TestPaths:
    async def test_fast_and_careful_paths_agree(self, client: httpx.AsyncClient, db: Db) -> None:
        await upload(client, "products", PRODUCTS)
        header = "id,product_id,quantity,created_date"
        fast_report, fast_rejects = await run(client, "\n".join([header, *ROWS]) + "\n")
        async with db.engine.begin() as conn:  # the same rows again, as new ones
            await conn.execute(text(f"TRUNCATE orders, {', '.join(ROLLUP_TABLES)}"))
        # A quoted field anywhere sends the whole file down the careful path.
        careful_rows = [*ROWS[:-1], '"0",1,1,2024-12-01']
        careful_report, careful_rejects = await run(
            client, "\n".join([header, *careful_rows]) + "\n"
        )
        keys = ("rows_total", "rows_inserted", "rows_rejected", "rejects_by_code")
        assert {k: fast_report[k] for k in keys} == {k: careful_report[k] for k in keys}
        assert fast_rejects == careful_rejects
        assert fast_report["rejects_by_code"] == {
            "out_of_range": 4,
            "missing_value": 2,
            "unknown_product": 1,
            "duplicate_in_file": 1,
            "invalid_date": 3,
        }
        await db.assert_rollups_exact()

    async def test_fast_path_rejects_keep_the_fields(self, client: httpx.AsyncClient) -> None:
        await upload(client, "products", PRODUCTS)
        _, rejects = await run(client, "id,product_id,quantity,created_date\n4,1,0,'2024-12-01'\n")
        report = (await client.get("/uploads")).json()["items"][0]
        [item] = (await client.get(report["rejects_url"])).json()["items"]
        assert [item["id"], item["product_id"], item["quantity"], item["created_date"]] == [
            "4", "1", "0", "'2024-12-01'",
        ]  # fmt: skip
        assert rejects == [(2, "out_of_range", "quantity '0' is outside 1 to 2147483647")]


@pytest.fixture
async def limited_client(
    database_url: URL, tmp_path: Path, clean_db: None
) -> AsyncIterator[httpx.AsyncClient]:
    """The service connected as an ordinary role, which may not skip key triggers."""
    conn = await asyncpg.connect(app_db.asyncpg_dsn(database_url))
    try:
        await conn.execute(
            "DO $$ BEGIN CREATE ROLE orderlens_limited LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;"
            " GRANT USAGE, CREATE ON SCHEMA public TO orderlens_limited;"
            " GRANT ALL ON ALL TABLES IN SCHEMA public TO orderlens_limited;"
            " GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO orderlens_limited;"
            f' GRANT TEMPORARY ON DATABASE "{database_url.database}" TO orderlens_limited;'
        )
    finally:
        await conn.close()
    settings = make_settings(database_url.set(username="orderlens_limited"), tmp_path)
    async for c in open_client(create_app(settings)):
        yield c
    conn = await asyncpg.connect(app_db.asyncpg_dsn(database_url))
    try:  # roles belong to the whole server: leave none behind
        await conn.execute("DROP OWNED BY orderlens_limited; DROP ROLE orderlens_limited")
    finally:
        await conn.close()


class TestKeyChecks:
    async def test_ordinary_role_loads_with_the_foreign_key_trigger(
        self, limited_client: httpx.AsyncClient, db: Db
    ) -> None:
        await upload(limited_client, "products", PRODUCTS)
        report, _ = await run(
            limited_client, "\n".join(["id,product_id,quantity,created_date", *ROWS]) + "\n"
        )
        assert report["rows_inserted"] == 3
        assert report["rows_rejected"] == 11
        await db.assert_rollups_exact()
        assert await db.rows(
            "SELECT count(*) FROM orders o LEFT JOIN products p USING (product_id) WHERE p.product_id IS NULL"
        ) == [(0,)]

    async def test_no_order_ever_lacks_its_product(self, client: httpx.AsyncClient, db: Db) -> None:
        await upload(client, "products", PRODUCTS)
        await run(client, "\n".join(["id,product_id,quantity,created_date", *ROWS]) + "\n")
        assert await db.rows(
            "SELECT count(*) FROM orders o LEFT JOIN products p USING (product_id) WHERE p.product_id IS NULL"
        ) == [(0,)]
        # The constraint is still declared and valid for every other writer.
        assert await db.rows(
            "SELECT convalidated FROM pg_constraint WHERE conname = 'fk_orders_product_id_products'"
        ) == [(True,)]
