"""An upload whose database connections are killed under it never hangs.

Seen before: a million-order upload whose busy connections were terminated never
answered (asyncpg's COPY waited forever for a socket that had closed). Now each of an
upload's connections is killed in turn, at the phase where it is busy, over real
sockets, with a client that sends the whole file before it reads: the upload answers
within 10 s, and the service takes the next one.

- its own, the summarizer's (the second connection a big new-orders upload borrows) or
  both: 503 `database_unavailable`, the upload `failed` with that code, nothing of it
  stored. (A summarizer that fails otherwise, by an error of its own, leaves the upload
  to sum for itself: tests/uploads/test_summarizer.py.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import URL

from app import db as app_db
from app.main import create_app
from tests.conftest import API_KEY, Db, make_settings
from tests.helpers import live_server

ROWS = 400_000
PRODUCTS = "id,name,category,price\n" + "".join(f"{i},P{i},C{i % 5},{i}.50\n" for i in range(1, 51))
ORDERS = ("id,product_id,quantity,created_date\n" + "".join(
    f"{i},{i % 50 + 1},{i % 7 + 1},'2024-{i % 12 + 1:02d}-{i % 28 + 1:02d}'\n"
    for i in range(1, ROWS + 1)
)).encode()  # fmt: skip
ANSWER_WITHIN = 10.0

# (connections to kill: their application_name patterns, a regular expression for the
# query each is busy with)
TARGETS = {
    "upload, staging": [("orderlens upload %", "^COPY ")],
    # The statement that inserts: `load`, which judges too, or `load_whole` for a file like
    # this one (pg_stat_activity shows a query's first 1,024 bytes).
    "upload, judging": [("orderlens upload %", r"^\s*(WITH judged AS|INSERT INTO orders )")],
    "summarizer, staging": [("orderlens summarizer %", "^COPY ")],
    "both": [("orderlens summarizer %", "^COPY "), ("orderlens upload %", "")],
}


@pytest.fixture
def live(database_url: URL, tmp_path: Path, db: Db) -> Iterator[str]:
    settings = make_settings(database_url, tmp_path, summarizer_min_rows=1)
    with live_server(create_app(settings)) as base:
        yield base


async def _kill_when_busy(admin: asyncpg.Connection, targets: list[tuple[str, str]]) -> float:
    """Terminate the targets' backends together, as soon as each runs its query; when."""
    for _ in range(3000):
        found = [
            await admin.fetch(
                # This database's only: other test processes share the server.
                "SELECT pid FROM pg_stat_activity WHERE application_name LIKE $1"
                " AND state = 'active' AND query ~ $2 AND datname = current_database()",
                name,
                query,
            )
            for name, query in targets
        ]
        if all(found):
            for pids in found:
                for (pid,) in pids:
                    await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
            return time.perf_counter()
        await asyncio.sleep(0.005)
    pytest.fail(f"never saw {targets} busy at once")


@pytest.mark.parametrize("target", sorted(TARGETS))
async def test_a_killed_connection_never_leaves_the_upload_hanging(
    live: str, database_url: URL, db: Db, target: str
) -> None:
    headers = {"X-API-Key": API_KEY}
    async with httpx.AsyncClient(base_url=live, timeout=60) as client:
        products = await client.post(
            "/uploads/products", files={"file": ("p.csv", PRODUCTS)}, headers=headers
        )
        assert products.status_code == 201
        admin = await asyncpg.connect(app_db.asyncpg_dsn(database_url))
        try:
            posting = asyncio.create_task(
                client.post("/uploads/orders", files={"file": ("o.csv", ORDERS)}, headers=headers)
            )
            killed = await _kill_when_busy(admin, TARGETS[target])
            response = await asyncio.wait_for(posting, 30)
            waited = time.perf_counter() - killed
        finally:
            await admin.close()
        assert waited < ANSWER_WITHIN, waited
        [(status, code)] = await db.rows(
            "SELECT status, error->>'code' FROM uploads WHERE kind = 'orders'"
        )
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "database_unavailable"
        assert (status, code) == ("failed", "database_unavailable")
        for table in ("orders", "rejects", "daily_sales", "product_daily_sales"):
            assert await db.count(table) == 0, table
        # The service takes the next upload.
        again = await client.post(
            "/uploads/orders",
            files={"file": ("o.csv", b"id,product_id,quantity,created_date\n999999999,1,1,2024-12-01\n")},
            headers=headers,
        )  # fmt: skip
        assert again.status_code == 201, again.text
