"""GET /freshness and its gauges (issue 28, item 2): how old the data is, and each named
reader's copy of it, against FRESHNESS_SLA_SECONDS."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import URL, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.freshness import service as freshness
from tests.conftest import open_client
from tests.fx.fake import FakeFreeCurrencyApi
from tests.helpers import assert_error, fx_app, upload

PRODUCTS = "id,name,category,price\n1,Lamp,Home,10.50\n2,Desk,Office,200.00\n"
ORDERS = "id,product_id,quantity,created_date\n1,1,2,2024-01-01\n2,2,1,2024-01-03\n"
DAY = 86_400


@pytest.fixture
async def api(
    database_url: URL, tmp_path: Path, clean_db: None
) -> AsyncIterator[httpx.AsyncClient]:
    app = fx_app(database_url, tmp_path, FakeFreeCurrencyApi(latest_rate="0.2"))
    async for client in open_client(app):
        yield client


async def _freshness(api: httpx.AsyncClient) -> dict[str, Any]:
    response = await api.get("/freshness")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _read(api: httpx.AsyncClient, feed: str, **params: str) -> None:
    response = await api.get(f"/exports/{feed}.parquet", params=params)
    assert response.status_code == 200, response.text


async def _sql(engine: AsyncEngine, statement: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(statement))


async def _age(engine: AsyncEngine, table: str, seconds: int, where: str = "true") -> None:
    """Make the rows of `table` that `where` holds finish `seconds` ago."""
    await _sql(
        engine,
        f"UPDATE {table} SET finished_at = clock_timestamp() - make_interval(secs => {seconds})"
        f" WHERE {where}",
    )


async def test_before_any_upload_the_data_is_stale_and_no_one_reads(api: httpx.AsyncClient) -> None:
    assert await _freshness(api) == {
        "data_until": None,
        "last_upload_at": None,
        "last_forecast_at": None,
        "age_seconds": None,
        "sla_seconds": DAY,
        "stale": True,
        "consumers": [],
    }


async def test_the_data_is_as_old_as_its_last_upload(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await upload(api, "products", PRODUCTS)
    await upload(api, "orders", ORDERS)
    await upload(api, "orders", "id,product_id,quantity,created_date\n3,1,1,2999-12-31\n")
    now = await _freshness(api)
    # A typo far in the future does not make the data look current.
    assert now["data_until"] == "2024-01-03"
    assert now["stale"] is False and 0 <= now["age_seconds"] < 60
    uploaded = dt.datetime.fromisoformat(now["last_upload_at"])
    assert abs((dt.datetime.now(dt.UTC) - uploaded).total_seconds()) < 60
    await _age(engine, "uploads", DAY + 60)
    later = await _freshness(api)
    assert later["stale"] is True and DAY + 60 <= later["age_seconds"] < DAY + 120
    # A failed upload refreshes nothing.
    assert (await upload(api, "orders", "id,product_id\n1,1\n")).status_code == 422
    assert (await _freshness(api))["stale"] is True


async def test_each_named_reader_is_as_old_as_its_last_finished_read(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await upload(api, "products", PRODUCTS)
    await upload(api, "orders", ORDERS)
    await _read(api, "orders", consumer="warehouse-a", dataset="orderlens")
    await _read(api, "products", consumer="warehouse-a", dataset="orderlens")
    await _read(api, "orders", consumer="sync@host-b")  # no dataset given
    await _read(api, "orders")  # no name: not a consumer
    consumers = (await _freshness(api))["consumers"]
    assert [(c["consumer"], c["dataset"], c["stale"]) for c in consumers] == [
        ("sync@host-b", None, False),
        ("warehouse-a", "orderlens", False),
    ]
    assert all(0 <= c["age_seconds"] < 60 for c in consumers)
    # warehouse-a's orders read is old, its products read not: its copy is as old as the
    # newest finished read.
    await _age(engine, "syncs", 2 * DAY, "consumer = 'warehouse-a' AND feed = 'orders'")
    await _age(engine, "syncs", DAY + 1, "consumer = 'sync@host-b'")
    by_name = {c["consumer"]: c for c in (await _freshness(api))["consumers"]}
    assert by_name["warehouse-a"]["stale"] is False
    assert by_name["sync@host-b"]["stale"] is True
    assert DAY + 1 <= by_name["sync@host-b"]["age_seconds"] < DAY + 60
    # A read that never finished is no refresh.
    await _sql(engine, "UPDATE syncs SET finished_at = NULL WHERE consumer = 'sync@host-b'")
    by_name = {c["consumer"]: c for c in (await _freshness(api))["consumers"]}
    assert by_name["sync@host-b"]["last_sync_finished_at"] is None
    assert by_name["sync@host-b"]["stale"] is True
    # /syncs shows who read, and lists one consumer's reads.
    items = (await api.get("/syncs", params={"consumer": "warehouse-a"})).json()["items"]
    assert [(i["feed"], i["consumer"], i["dataset"]) for i in items] == [
        ("products", "warehouse-a", "orderlens"),
        ("orders", "warehouse-a", "orderlens"),
    ]


@pytest.mark.parametrize("bad", ["", " a", "a b", "x" * 65, "a;drop", "ä"])
async def test_a_name_that_is_not_one_is_refused(api: httpx.AsyncClient, bad: str) -> None:
    assert_error(
        await api.get("/exports/orders.parquet", params={"consumer": bad}), 422, "validation_error"
    )
    assert_error(
        await api.get("/exports/orders.parquet", params={"dataset": bad}), 422, "validation_error"
    )
    assert (await api.get("/syncs")).json()["items"] == []


async def test_the_gauges_say_the_same(api: httpx.AsyncClient, engine: AsyncEngine) -> None:
    scraped = (await api.get("/metrics")).text
    assert "orderlens_data_stale 1.0" in scraped
    # No upload yet: no age.
    assert not [x for x in scraped.splitlines() if x.startswith("orderlens_data_age_seconds ")]
    assert f"orderlens_freshness_sla_seconds {float(DAY)}" in scraped
    await upload(api, "products", PRODUCTS)
    await _read(api, "products", consumer="warehouse-a", dataset="orderlens")
    await _age(engine, "syncs", 2 * DAY)
    scraped = (await api.get("/metrics")).text
    assert "orderlens_data_stale 0.0" in scraped
    [age] = [
        line for line in scraped.splitlines() if line.startswith("orderlens_data_age_seconds ")
    ]
    assert 0 <= float(age.split()[1]) < 60
    labels = 'consumer="warehouse-a",dataset="orderlens"'
    assert f"orderlens_consumer_stale{{{labels}}} 1.0" in scraped
    [line] = [
        x
        for x in scraped.splitlines()
        if x.startswith(f"orderlens_consumer_age_seconds{{{labels}}}")
    ]
    assert 2 * DAY <= float(line.split()[1]) < 2 * DAY + 60


async def test_a_scrape_without_the_database_answers_without_the_gauges(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The figures cannot be read (the database gone, or slow past
    FRESHNESS_READ_SECONDS): the scrape still answers, every other family in it."""

    async def gone(*_: object) -> None:
        raise ConnectionRefusedError("the database is gone")

    monkeypatch.setattr(freshness, "read", gone)
    response = await api.get("/metrics")
    assert response.status_code == 200
    assert "orderlens_data_stale" not in response.text
    assert "orderlens_http_requests_total" in response.text
