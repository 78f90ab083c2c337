"""GET /metrics: Prometheus text that parses, and counters that move with the service's
work (requests by route template, upload rows, FX calls and cache, the pools)."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy import URL, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.main import create_app
from app.metrics import PoolCollector
from tests.conftest import open_client
from tests.fx.fake import FakeFreeCurrencyApi
from tests.helpers import fx_app, upload

PRODUCTS = "id,name,category,price\n1,Shirt,Shirts,10.00\n2,Pants,Pants,20.50\n"
ORDERS = (
    "id,product_id,quantity,created_date\n"
    "1,1,2,2024-11-01\n"
    "2,999,1,2024-11-01\n"  # unknown_product
    "3,2,x,2024-11-02\n"  # invalid_integer
    "4,2,1,2024-13-02\n"  # invalid_date
    "5,1,1,2024-11-03\n"
)


async def scrape(client: httpx.AsyncClient) -> list[Sample]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return [s for f in text_string_to_metric_families(response.text) for s in f.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels` (0 if none)."""
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def label_values(samples: list[Sample], label: str) -> set[str]:
    return {s.labels[label] for s in samples if label in s.labels}


class TestExposition:
    async def test_parses_as_prometheus_text_and_names_every_family(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/metrics")
        names = {f.name for f in text_string_to_metric_families(response.text)}
        assert {
            "orderlens_http_requests",
            "orderlens_http_request_duration_seconds",
            "orderlens_upload_rows",
            "orderlens_upload_rejects",
            "orderlens_ingest_duration_seconds",
            "orderlens_fx_upstream_calls",
            "orderlens_fx_upstream_duration_seconds",
            "orderlens_fx_errors",
            "orderlens_fx_fallbacks",
            "orderlens_fx_cache_hits",
            "orderlens_fx_cache_misses",
            "orderlens_db_pool_checked_out",
            "orderlens_db_pool_idle",
            "orderlens_db_pool_size",
            "orderlens_event_loop_lag_seconds",
            "orderlens_gc_pause_seconds",
        } <= names

    async def test_documented_as_text_plain(self, client: httpx.AsyncClient) -> None:
        operation = (await client.get("/openapi.json")).json()["paths"]["/metrics"]["get"]
        assert list(operation["responses"]["200"]["content"]) == [
            "text/plain; version=0.0.4; charset=utf-8"
        ]

    async def test_each_app_counts_on_its_own_registry(
        self, client: httpx.AsyncClient, settings: Settings
    ) -> None:
        await client.get("/healthz")
        async for other in open_client(create_app(settings)):
            samples = await scrape(other)
        assert value(samples, "orderlens_http_requests_total", route="/healthz") == 0
        assert value(await scrape(client), "orderlens_http_requests_total", route="/healthz") == 1


class TestStalls:
    """What a request's tail is made of: the loop held by something, and the collector."""

    async def test_a_held_loop_shows_in_the_lag(self, client: httpx.AsyncClient) -> None:
        await asyncio.sleep(0.25)  # the probe's first samples, of an idle loop
        before = await scrape(client)
        assert value(before, "orderlens_event_loop_lag_seconds_count") >= 1
        bucket = "orderlens_event_loop_lag_seconds_bucket"

        def late(samples: list[Sample]) -> float:
            return value(samples, bucket, le="+Inf") - value(samples, bucket, le="0.1")

        time.sleep(0.3)  # noqa: ASYNC251 (the stall this test makes on purpose)
        await asyncio.sleep(0.15)  # the probe wakes 0.2-0.3 s late, and says so
        assert late(await scrape(client)) >= late(before) + 1

    async def test_collections_are_timed_by_generation(self, client: httpx.AsyncClient) -> None:
        gc.collect()
        samples = await scrape(client)
        assert value(samples, "orderlens_gc_pause_seconds_count", generation="2") >= 1


class TestHttp:
    async def test_requests_counted_by_route_template_and_status(
        self, client: httpx.AsyncClient
    ) -> None:
        await client.get("/healthz")
        await client.get("/healthz")
        await client.get("/uploads/987654")  # 404 upload_not_found
        await client.get("/uploads/987654/rejects")
        await client.get("/no/such/path/123456")
        await client.post("/healthz")  # 405
        samples = await scrape(client)
        count = "orderlens_http_requests_total"
        assert value(samples, count, method="GET", route="/healthz", status="200") == 2
        assert value(samples, count, route="/uploads/{upload_id}", status="404") == 1
        assert value(samples, count, route="/uploads/{upload_id}/rejects", status="404") == 1
        assert value(samples, count, route="unmatched", status="404") == 1
        assert value(samples, count, method="POST", route="/healthz", status="405") == 1
        histogram = "orderlens_http_request_duration_seconds_count"
        assert value(samples, histogram, route="/healthz", status="200") == 2
        # Raw paths never become labels: the number of series stays bounded.
        routes = label_values(samples, "route")
        assert not any("987654" in r or "123456" in r for r in routes)
        assert routes <= {
            "/healthz",
            "/uploads/{upload_id}",
            "/uploads/{upload_id}/rejects",
            "unmatched",
            "/metrics",
        }

    async def test_unknown_methods_share_one_label(self, client: httpx.AsyncClient) -> None:
        await client.request("BREW", "/healthz")
        samples = await scrape(client)
        assert value(samples, "orderlens_http_requests_total", method="other") == 1
        assert "BREW" not in label_values(samples, "method")

    async def test_pool_gauges_read_at_scrape_time(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/readyz")).status_code == 200
        samples = await scrape(client)
        assert value(samples, "orderlens_db_pool_size", pool="main") == 10
        assert value(samples, "orderlens_db_pool_size", pool="fx") == 4
        assert value(samples, "orderlens_db_pool_checked_out", pool="main") == 0
        assert value(samples, "orderlens_db_pool_idle", pool="main") >= 1

    async def test_pool_collector_sees_connections_in_use(self, engine: AsyncEngine) -> None:
        collector = PoolCollector()
        collector.watch("test", engine)

        def gauges() -> dict[str, float]:
            return {m.name: m.samples[0].value for m in collector.collect()}

        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            held = gauges()
        assert held["orderlens_db_pool_checked_out"] == 1
        assert held["orderlens_db_pool_size"] == 2
        assert gauges()["orderlens_db_pool_checked_out"] == 0
        collector.forget("test")
        assert all(not m.samples for m in collector.collect())


class TestUploads:
    async def test_rows_counted_by_outcome_and_rejects_by_code(
        self, client: httpx.AsyncClient
    ) -> None:
        assert (await upload(client, "products", PRODUCTS)).status_code == 201
        assert (await upload(client, "products", PRODUCTS)).status_code == 201  # unchanged
        assert (await upload(client, "orders", ORDERS)).status_code == 201
        samples = await scrape(client)
        rows = "orderlens_upload_rows_total"
        assert value(samples, rows, kind="products", outcome="inserted") == 2
        assert value(samples, rows, kind="products", outcome="unchanged") == 2
        assert value(samples, rows, kind="orders", outcome="inserted") == 2
        assert value(samples, rows, kind="orders", outcome="rejected") == 3
        assert value(samples, rows, kind="orders", outcome="updated") == 0
        rejects = "orderlens_upload_rejects_total"
        assert value(samples, rejects, kind="orders", code="unknown_product") == 1
        assert value(samples, rejects, kind="orders", code="invalid_integer") == 1
        assert value(samples, rejects, kind="orders", code="invalid_date") == 1
        duration = "orderlens_ingest_duration_seconds_count"
        assert value(samples, duration, kind="products", result="succeeded") == 2
        assert value(samples, duration, kind="orders", result="succeeded") == 1
        requests = "orderlens_http_requests_total"
        assert value(samples, requests, route="/uploads/products") == 2
        assert value(samples, requests, route="/uploads/orders") == 1

    async def test_failed_upload_is_timed_as_failed_without_rows(
        self, client: httpx.AsyncClient
    ) -> None:
        assert (await upload(client, "orders", "")).status_code == 422
        samples = await scrape(client)
        duration = "orderlens_ingest_duration_seconds_count"
        assert value(samples, duration, kind="orders", result="failed") == 1
        assert value(samples, "orderlens_upload_rows_total") == 0


@pytest.fixture
def fake() -> FakeFreeCurrencyApi:
    return FakeFreeCurrencyApi()


def fx_client(
    database_url: URL, tmp_path: Path, fake: FakeFreeCurrencyApi, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    return open_client(fx_app(database_url, tmp_path, fake, **overrides))


class TestFx:
    async def test_upstream_calls_and_cache_hits(
        self, database_url: URL, tmp_path: Path, fake: FakeFreeCurrencyApi, clean_db: None
    ) -> None:
        async for fx in fx_client(database_url, tmp_path, fake):
            for _ in range(3):
                assert (await fx.get("/fx/rates/latest")).status_code == 200
            samples = await scrape(fx)
        calls = "orderlens_fx_upstream_calls_total"
        assert value(samples, calls, provider="freecurrencyapi", call="latest", outcome="ok") == 1
        assert value(samples, calls) == 1 == len(fake.calls)
        assert value(samples, "orderlens_fx_upstream_duration_seconds_count") == 1
        assert value(samples, "orderlens_fx_cache_misses_total", kind="latest") == 1
        assert value(samples, "orderlens_fx_cache_hits_total", kind="latest", layer="memory") == 2
        assert value(samples, "orderlens_fx_errors_total") == 0

    async def test_historical_days_count_unpublished_answers(
        self, database_url: URL, tmp_path: Path, fake: FakeFreeCurrencyApi, clean_db: None
    ) -> None:
        fake.rates = {"2024-11-01": "0.17"}
        async for fx in fx_client(database_url, tmp_path, fake):
            assert (await fx.get("/fx/rates", params={"date": "2024-11-03"})).status_code == 200
            assert (await fx.get("/fx/rates", params={"date": "2024-11-03"})).status_code == 200
            samples = await scrape(fx)
        calls = "orderlens_fx_upstream_calls_total"
        # Sunday and Saturday have nothing published, Friday has: three calls, then cached.
        assert value(samples, calls, call="historical", outcome="unpublished") == 2
        assert value(samples, calls, call="historical", outcome="ok") == 1
        assert value(samples, "orderlens_fx_cache_misses_total", kind="historical") == 1
        hits = "orderlens_fx_cache_hits_total"
        assert value(samples, hits, kind="historical", layer="memory") == 1

    async def test_provider_errors_and_fallbacks(
        self, database_url: URL, tmp_path: Path, fake: FakeFreeCurrencyApi, clean_db: None
    ) -> None:
        fake.mode = "fail401"
        async for fx in fx_client(database_url, tmp_path, fake):
            assert (await fx.get("/fx/rates/latest")).status_code == 503
            samples = await scrape(fx)
        assert value(samples, "orderlens_fx_errors_total", error="configuration") == 1
        calls = "orderlens_fx_upstream_calls_total"
        assert value(samples, calls, call="latest", outcome="error") == 1
        assert value(samples, "orderlens_fx_fallbacks_total", result="unavailable") == 1

    async def test_stale_rate_served_is_a_fallback(
        self, database_url: URL, tmp_path: Path, fake: FakeFreeCurrencyApi, clean_db: None
    ) -> None:
        async for fx in fx_client(database_url, tmp_path, fake, fx_cache_ttl_seconds=0):
            assert (await fx.get("/fx/rates/latest")).status_code == 200
            fake.mode = "fail500"
            assert (await fx.get("/fx/rates/latest")).json()["stale"] is True
            samples = await scrape(fx)
        assert value(samples, "orderlens_fx_errors_total", error="transient") == 1
        assert value(samples, "orderlens_fx_fallbacks_total", result="stale") == 1
        assert value(samples, "orderlens_fx_cache_misses_total", kind="latest") == 2
