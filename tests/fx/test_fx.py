"""The FX service against a fake freecurrencyapi (the real client code runs), and the
offline ECB provider."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from app.fx.providers import FreeCurrencyApi
from app.fx.service import FxService
from tests.conftest import open_client
from tests.fx.fake import FX_KEY, FakeFreeCurrencyApi
from tests.helpers import assert_error, fx_app, upload


# The shared service with a fake freecurrencyapi (tests/conftest.py), under this file's
# short names.
@pytest.fixture
def fake(fake_fx: FakeFreeCurrencyApi) -> FakeFreeCurrencyApi:
    return fake_fx


@pytest.fixture
def fx(api: httpx.AsyncClient) -> httpx.AsyncClient:
    return api


class TestLatest:
    async def test_answers_the_rate_and_says_which(
        self, fx: httpx.AsyncClient, fake: FakeFreeCurrencyApi
    ) -> None:
        body = (await fx.get("/fx/rates/latest")).json()
        assert body["base"] == "BRL"
        assert body["quote"] == "USD"
        assert body["rate"] == "0.184965"
        assert body["source"] == "freecurrencyapi"
        assert body["as_of"] == datetime.now(UTC).date().isoformat()
        assert body["stale"] is False
        [call] = fake.calls
        assert call.url.path == "/v1/latest"
        assert call.headers["apikey"] == FX_KEY
        assert FX_KEY not in str(call.url)

    async def test_64_concurrent_cold_requests_make_one_call(
        self, fx: httpx.AsyncClient, fake: FakeFreeCurrencyApi
    ) -> None:
        fake.delay = 0.2
        answers = await asyncio.gather(*(fx.get("/fx/rates/latest") for _ in range(64)))
        assert {a.status_code for a in answers} == {200}
        assert {a.json()["rate"] for a in answers} == {"0.184965"}
        assert fake.count("latest") == 1

    async def test_ttl_expiry_makes_exactly_one_more_call(
        self, database_url: URL, tmp_path: Path, fake: FakeFreeCurrencyApi, clean_db: None
    ) -> None:
        async for client in open_client(
            fx_app(database_url, tmp_path, fake, fx_cache_ttl_seconds=1)
        ):
            await asyncio.gather(*(client.get("/fx/rates/latest") for _ in range(64)))
            assert fake.count("latest") == 1
            await asyncio.sleep(1.1)
            fake.latest_rate = "0.19"
            fake.delay = 0.1
            answers = await asyncio.gather(*(client.get("/fx/rates/latest") for _ in range(64)))
            assert fake.count("latest") == 2
            assert {a.json()["rate"] for a in answers} == {"0.19"}

    async def test_retries_429_and_5xx_then_succeeds(
        self, fx: httpx.AsyncClient, fake: FakeFreeCurrencyApi
    ) -> None:
        fake.mode, fake.fail_times = "fail429", 2
        body = (await fx.get("/fx/rates/latest")).json()
        assert body["stale"] is False
        assert fake.count("latest") == 3

    async def test_failing_upstream_serves_the_last_rate_as_stale(
        self, database_url: URL, tmp_path: Path, fake: FakeFreeCurrencyApi, clean_db: None
    ) -> None:
        async for client in open_client(
            fx_app(database_url, tmp_path, fake, fx_cache_ttl_seconds=0)
        ):
            assert (await client.get("/fx/rates/latest")).json()["stale"] is False
            fake.mode = "fail500"
            before = len(fake.calls)
            body = (await client.get("/fx/rates/latest")).json()
            assert body["stale"] is True
            assert body["rate"] == "0.184965"
            assert 1 < len(fake.calls) - before <= 4  # retried, boundedly
            # While the provider is down, answers come from the store without asking it.
            before = len(fake.calls)
            assert (await client.get("/fx/rates/latest")).json()["stale"] is True
            assert len(fake.calls) == before

    async def test_hanging_upstream_costs_bounded_time(
        self, fx: httpx.AsyncClient, fake: FakeFreeCurrencyApi
    ) -> None:
        fake.mode = "hang"
        started = time.monotonic()
        assert_error(await fx.get("/fx/rates/latest"), 503, "fx_unavailable")
        assert time.monotonic() - started < 6.5

    async def test_bad_key_is_not_retried_and_never_shown(
        self, fx: httpx.AsyncClient, fake: FakeFreeCurrencyApi, caplog: pytest.LogCaptureFixture
    ) -> None:
        fake.mode = "fail401"
        with caplog.at_level(logging.DEBUG):
            response = await fx.get("/fx/rates/latest")
        assert_error(response, 503, "fx_unavailable")
        assert fake.count("latest") == 1
        assert "401" in caplog.text
        assert FX_KEY not in caplog.text
        assert FX_KEY not in response.text

    async def test_garbage_answer_is_an_outage(
        self, fx: httpx.AsyncClient, fake: FakeFreeCurrencyApi
    ) -> None:
        fake.mode = "garbage"
        assert_error(await fx.get("/fx/rates/latest"), 503, "fx_unavailable")


class TestRestartAndOutage:
    async def test_restart_with_upstream_down_serves_the_stored_rate(
        self, database_url: URL, tmp_path: Path, fake: FakeFreeCurrencyApi, clean_db: None
    ) -> None:
        async for client in open_client(fx_app(database_url, tmp_path, fake)):
            assert (await client.get("/fx/rates/latest")).status_code == 200
        down = FakeFreeCurrencyApi(mode="fail500")
        # Within the TTL the stored rate is simply fresh: no call at all.
        async for client in open_client(fx_app(database_url, tmp_path, down)):
            body = (await client.get("/fx/rates/latest")).json()
            assert (body["rate"], body["stale"]) == ("0.184965", False)
            assert down.calls == []
        # Past it, the provider is asked, fails, and the stored rate is served as stale.
        async for client in open_client(
            fx_app(database_url, tmp_path, down, fx_cache_ttl_seconds=0)
        ):
            body = (await client.get("/fx/rates/latest")).json()
            assert (body["rate"], body["stale"]) == ("0.184965", True)

    async def test_no_rate_ever_known_is_503_only_where_usd_is_needed(
        self, fx: httpx.AsyncClient, fake: FakeFreeCurrencyApi
    ) -> None:
        fake.mode = "fail500"
        assert_error(await fx.get("/fx/rates/latest"), 503, "fx_unavailable")
        products = "id,name,category,price\n1,Shirt,Shirts,10\n"
        assert (await upload(fx, "products", products)).status_code == 201
        assert (await fx.get("/uploads")).status_code == 200


class TestHistorical:
    async def test_weekend_days_take_the_latest_earlier_rate(
        self, fx: httpx.AsyncClient, fake: FakeFreeCurrencyApi
    ) -> None:
        fake.rates = {"2024-11-29": "0.171", "2024-12-02": "0.172"}  # Friday and Monday
        saturday = (await fx.get("/fx/rates", params={"date": "2024-11-30"})).json()
        assert (saturday["rate"], saturday["as_of"]) == ("0.171", "2024-11-29")
        sunday = (await fx.get("/fx/rates", params={"date": "2024-12-01"})).json()
        assert (sunday["rate"], sunday["as_of"]) == ("0.171", "2024-11-29")
        monday = (await fx.get("/fx/rates", params={"date": "2024-12-02"})).json()
        assert (monday["rate"], monday["as_of"]) == ("0.172", "2024-12-02")
        # One upstream call per distinct date, then cached.
        asked = sorted(c.url.params["date"] for c in fake.calls)
        assert asked == ["2024-11-29", "2024-11-30", "2024-12-01", "2024-12-02"]
        await fx.get("/fx/rates", params={"date": "2024-12-01"})
        assert len(fake.calls) == 4

    async def test_many_days_at_once(
        self, engine: AsyncEngine, fake: FakeFreeCurrencyApi, clean_db: None
    ) -> None:
        start = date(2024, 11, 1)
        fake.rates = {
            (start + timedelta(days=i)).isoformat(): f"0.18{i:02d}"
            for i in range(30)
            if (start + timedelta(days=i)).weekday() < 5
        }
        async with httpx.AsyncClient(transport=fake.transport()) as http:
            provider = FreeCurrencyApi(http, base_url="http://fx.test/v1", api_key=FX_KEY)
            service = FxService(provider=provider, engine=engine, ttl_seconds=3600)
            days = [start + timedelta(days=i % 30) for i in range(300)]
            rates = await service.for_days(days)
        assert len(rates) == 30
        assert rates[date(2024, 11, 2)].as_of == date(2024, 11, 1)  # a Saturday
        assert len(fake.calls) == 30

    async def test_future_and_malformed_dates(self, fx: httpx.AsyncClient) -> None:
        tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
        assert_error(await fx.get("/fx/rates", params={"date": tomorrow}), 422, "date_in_future")
        assert_error(
            await fx.get("/fx/rates", params={"date": "2024-02-30"}), 422, "validation_error"
        )
        assert_error(await fx.get("/fx/rates"), 422, "validation_error")

    async def test_today_is_the_latest_rate(
        self, fx: httpx.AsyncClient, fake: FakeFreeCurrencyApi
    ) -> None:
        today = datetime.now(UTC).date().isoformat()
        body = (await fx.get("/fx/rates", params={"date": today})).json()
        assert body["rate"] == "0.184965"
        assert fake.count("latest") == 1


class TestEcb:
    async def test_offline_ecb_rates(self, client: httpx.AsyncClient) -> None:
        from currency_converter import CurrencyConverter

        latest = (await client.get("/fx/rates/latest")).json()
        assert latest["source"] == "ecb"
        assert latest["stale"] is False
        last = CurrencyConverter().bounds["BRL"].last_date
        assert latest["as_of"] <= last.isoformat()
        assert 0.05 < float(latest["rate"]) < 1
        saturday = (await client.get("/fx/rates", params={"date": "2024-11-30"})).json()
        assert saturday["as_of"] == "2024-11-29"
        # 1.0562 USD and 6.4361 BRL per EUR on 2024-11-29: the cross rate, exactly.
        expected = (Decimal("1.0562") / Decimal("6.4361")).quantize(Decimal("1e-12"))
        assert saturday["rate"] == str(expected)


async def test_the_first_day_of_the_calendar_is_not_a_crash(client: httpx.AsyncClient) -> None:
    response = await client.get("/fx/rates", params={"date": "0001-01-01"})
    assert_error(response, 404, "rate_not_found")
