"""Single-flight across processes: FX services that share nothing but the database (as
worker processes do: each its own pool, memory cache and in-process single-flight)
make one provider call between them, through the advisory lock in `RateStore.locked`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy import URL, text

from app import db
from app.fx.providers import FreeCurrencyApi
from app.fx.service import FxService
from tests.fx.fake import FX_KEY, FakeFreeCurrencyApi

WORKERS = 3


@pytest.fixture
async def services(
    database_url: URL, clean_db: None
) -> AsyncIterator[tuple[list[FxService], FakeFreeCurrencyApi]]:
    """WORKERS services, each on an engine and HTTP client of its own, one slow fake."""
    fake = FakeFreeCurrencyApi(delay=0.3, rates={"2024-11-29": "0.172"})
    engines = [db.create_engine(database_url, pool_size=2) for _ in range(WORKERS)]
    clients = [httpx.AsyncClient(transport=fake.transport()) for _ in range(WORKERS)]
    try:
        yield (
            [
                FxService(
                    provider=FreeCurrencyApi(http, base_url="http://fx.test/v1", api_key=FX_KEY),
                    engine=engine,
                    ttl_seconds=3600,
                )
                for engine, http in zip(engines, clients, strict=True)
            ],
            fake,
        )
    finally:
        for http in clients:
            await http.aclose()
        for engine in engines:
            await engine.dispose()


class TestAcrossProcesses:
    async def test_cold_latest_is_fetched_once_by_all_of_them(
        self, services: tuple[list[FxService], FakeFreeCurrencyApi]
    ) -> None:
        fx, fake = services
        rates = await asyncio.gather(*(s.latest() for s in fx for _ in range(10)))
        assert fake.count("/latest") == 1
        assert {r.rate for r in rates} == {rates[0].rate}
        assert sum(s.upstream_calls for s in fx) == 1
        # The others read the one rate stored, not their own copy.
        assert {r.fetched_at for r in rates} == {rates[0].fetched_at}

    async def test_an_expired_rate_is_fetched_once_again(
        self, services: tuple[list[FxService], FakeFreeCurrencyApi], database_url: URL
    ) -> None:
        fx, fake = services
        await fx[0].latest()
        for service in fx:
            service.ttl = timedelta(0)  # everything stored is now expired
        # One of them fetches; with TTL 0 the rate it stores is stale at once for the
        # others, so each may fetch in turn, but never two at the same time.
        fake.calls.clear()
        fake.delay = 0.2
        started = asyncio.get_running_loop().time()
        await asyncio.gather(*(s.latest() for s in fx))
        elapsed = asyncio.get_running_loop().time() - started
        assert fake.count("/latest") == WORKERS
        assert elapsed >= WORKERS * 0.2 * 0.9, "provider calls overlapped"

    async def test_a_historical_day_is_asked_once_by_all_of_them(
        self, services: tuple[list[FxService], FakeFreeCurrencyApi]
    ) -> None:
        fx, fake = services
        saturday = date(2024, 11, 30)
        rates = await asyncio.gather(*(s.on(saturday) for s in fx for _ in range(5)))
        assert {(r.rate, r.as_of) for r in rates} == {(rates[0].rate, date(2024, 11, 29))}
        # Saturday (nothing published), then Friday: once each, whoever asked.
        assert fake.count("/historical") == 2

    async def test_the_lock_is_released_when_the_provider_fails(
        self, services: tuple[list[FxService], FakeFreeCurrencyApi], database_url: URL
    ) -> None:
        fx, fake = services
        fake.mode = "fail401"
        for service in fx:
            with pytest.raises(Exception, match="rate"):
                await service.latest()
        engine = db.create_engine(database_url, pool_size=1)
        try:
            async with engine.connect() as conn:
                held = await conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database ="
                        " (SELECT oid FROM pg_database WHERE datname = current_database())"
                    )
                )
        finally:
            await engine.dispose()
        assert held == 0
