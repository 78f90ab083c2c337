"""Answers kept per data version: served from memory while the data holds, never after
it changed; ETags, 304, Cache-Control; the read key still asked; memory bounded."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import URL, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app import db
from app.answers.store import Answer, AnswerStore
from app.answers.version import DataVersions
from app.main import create_app
from tests.conftest import API_KEY, make_settings, open_client
from tests.helpers import upload

PRODUCTS = "id,name,category,price\n1,Hat,Hats,10.00\n2,Bag,Bags,2.50\n"
ORDERS = "id,product_id,quantity,created_date\n1,1,2,2024-05-01\n2,2,5,2024-05-02\n"
MORE = "id,product_id,quantity,created_date\n3,2,9,2024-05-03\n"


@pytest.fixture
async def loaded(client: httpx.AsyncClient) -> httpx.AsyncClient:
    for kind, content in (("products", PRODUCTS), ("orders", ORDERS)):
        assert (await upload(client, kind, content)).status_code == 201
    return client


class TestKeptAnswers:
    async def test_a_second_read_is_served_from_memory(
        self, loaded: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        # The first answer loads the FX rate (an answer made while a rate is loaded is
        # not kept); the second is kept.
        await loaded.get("/insights/average-ticket")
        first = await loaded.get("/insights/average-ticket")
        # Change the rollup behind the service's back (the bump disabled): only an
        # answer kept in memory can still say 2 orders.
        async with engine.begin() as conn:
            await conn.execute(text("ALTER TABLE daily_sales DISABLE TRIGGER bump_data_version"))
            try:
                await conn.execute(text("UPDATE daily_sales SET orders = orders + 100"))
            finally:
                await conn.execute(
                    text("ALTER TABLE daily_sales ENABLE ALWAYS TRIGGER bump_data_version")
                )
        second = await loaded.get("/insights/average-ticket")
        assert first.json()["orders"] == second.json()["orders"] == 2
        assert first.content == second.content
        assert first.headers["etag"] == second.headers["etag"]
        # Any write through the tracked tables moves the version: the answer is remade.
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE daily_sales SET orders = orders - 100"))
        third = await loaded.get("/insights/average-ticket")
        assert third.json()["orders"] == 2
        assert int(third.headers["x-data-version"]) > int(first.headers["x-data-version"])

    async def test_an_upload_changes_the_answer_and_its_etag(
        self, loaded: httpx.AsyncClient
    ) -> None:
        before = await loaded.get("/kpis", params={"format": "csv"})
        assert (await upload(loaded, "orders", MORE)).status_code == 201
        after = await loaded.get("/kpis", params={"format": "csv"})
        assert "most_demanded_product,Bag" in after.text
        assert before.text != after.text
        assert before.headers["etag"] != after.headers["etag"]
        assert after.headers["content-type"] == "text/csv; charset=utf-8"
        assert "attachment" in after.headers["content-disposition"]

    async def test_if_none_match_is_304_while_the_data_holds(
        self, loaded: httpx.AsyncClient
    ) -> None:
        first = await loaded.get("/insights/daily-revenue")
        etag = first.headers["etag"]
        assert etag.startswith('"') and not etag.startswith("W/")
        assert first.headers["cache-control"] == "no-cache"
        assert first.headers["vary"] == "Accept"
        again = await loaded.get("/insights/daily-revenue", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag
        weak = await loaded.get(
            "/insights/daily-revenue", headers={"If-None-Match": f'"other", W/{etag}'}
        )
        assert weak.status_code == 304
        assert (await upload(loaded, "orders", MORE)).status_code == 201
        changed = await loaded.get("/insights/daily-revenue", headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.headers["etag"] != etag

    async def test_formats_and_queries_are_kept_apart(self, loaded: httpx.AsyncClient) -> None:
        json_answer = await loaded.get("/orders", params={"limit": 1})
        csv_answer = await loaded.get("/orders", headers={"Accept": "text/csv"})
        paged = await loaded.get("/orders", params={"limit": 2})
        assert json_answer.json()["items"][0]["order_id"] == 1
        assert len(paged.json()["items"]) == 2
        assert csv_answer.text.startswith("order_id,")
        invalid = await loaded.get("/kpis", params={"start": "2024-05-03", "end": "2024-05-01"})
        assert invalid.status_code == 422 and "etag" not in invalid.headers


class TestOneComputationPerMiss:
    """Requests that miss the same answer at the same version wait for one computation
    of it (issue 25: 32 clients computed 32 copies of each answer dropped by an upload)."""

    @pytest.fixture
    def computed(self, monkeypatch: pytest.MonkeyPatch) -> list[int]:
        """Counts average-ticket computations, each made slow enough to overlap."""
        from app.analytics import service

        calls: list[int] = []
        compute = service.average_ticket

        async def slow(*args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            await asyncio.sleep(0.3)
            return await compute(*args, **kwargs)

        monkeypatch.setattr(service, "average_ticket", slow)
        return calls

    async def test_concurrent_misses_compute_once(
        self, loaded: httpx.AsyncClient, computed: list[int]
    ) -> None:
        await loaded.get("/insights/average-ticket?format=csv")  # the FX rate loaded
        computed.clear()
        answers = await asyncio.gather(*(loaded.get("/insights/average-ticket") for _ in range(16)))
        assert {a.status_code for a in answers} == {200}
        assert len({a.content for a in answers}) == len({a.headers["etag"] for a in answers}) == 1
        assert len(computed) == 1
        # An upload moves the version: the next burst computes once more, the new answer.
        assert (await upload(loaded, "orders", MORE)).status_code == 201
        again = await asyncio.gather(*(loaded.get("/insights/average-ticket") for _ in range(16)))
        assert len(computed) == 2
        assert {a.json()["orders"] for a in again} == {3}

    async def test_a_failed_computation_leaves_the_others_to_compute(
        self, loaded: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from app.analytics import service

        await loaded.get("/insights/average-ticket?format=csv")
        compute, calls = service.average_ticket, []

        async def first_fails(*args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            await asyncio.sleep(0.2)
            if len(calls) == 1:
                raise RuntimeError("the leader's computation fails")
            return await compute(*args, **kwargs)

        monkeypatch.setattr(service, "average_ticket", first_fails)
        answers = await asyncio.gather(*(loaded.get("/insights/average-ticket") for _ in range(8)))
        assert sorted(a.status_code for a in answers) == [200] * 7 + [500]
        assert len(calls) >= 2

    async def test_answers_too_big_to_keep_are_computed_side_by_side(
        self, database_url: URL, tmp_path: Path, clean_db: None, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With room for no answer, no request waits for another: the 8 slow
        computations overlap (in turns, at most one would run at a time)."""
        from app.analytics import service

        compute, calls, running, overlap = service.average_ticket, [], [0], [0]

        async def slow(*args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            running[0] += 1
            overlap[0] = max(overlap[0], running[0])
            try:
                await asyncio.sleep(0.5)
                return await compute(*args, **kwargs)
            finally:
                running[0] -= 1

        settings = make_settings(database_url, tmp_path, answer_cache_bytes=64)
        async for client in open_client(create_app(settings)):
            for kind, content in (("products", PRODUCTS), ("orders", ORDERS)):
                assert (await upload(client, kind, content)).status_code == 201
            await client.get("/insights/average-ticket")
            monkeypatch.setattr(service, "average_ticket", slow)
            answers = await asyncio.gather(
                *(client.get("/insights/average-ticket") for _ in range(8))
            )
            assert {a.status_code for a in answers} == {200}
            assert len(calls) == 8
            # The first is not yet known to stream, so the others may wait for it once;
            # after it, they run side by side.
            assert overlap[0] >= 2, overlap


async def test_a_kept_answer_still_needs_the_read_key(
    database_url: URL, tmp_path: Path, clean_db: None
) -> None:
    app = create_app(make_settings(database_url, tmp_path, read_access="key"))
    async for client in open_client(app):
        keyed = {"X-API-Key": API_KEY}
        assert (await upload(client, "products", PRODUCTS)).status_code == 201
        first = await client.get("/kpis", headers=keyed)
        assert first.status_code == 200
        assert first.headers["cache-control"] == "private, no-cache"
        assert first.headers["vary"] == "Accept, X-API-Key"
        assert (await client.get("/kpis", headers=keyed)).status_code == 200
        assert (await client.get("/kpis")).status_code == 401
        assert (await client.get("/kpis", headers={"X-API-Key": "wrong"})).status_code == 401


class TestStore:
    def answer(self, size: int, version: int = 1) -> Answer:
        return Answer(b"x" * size, (), '"e"', version)

    def test_memory_stays_within_the_budget(self) -> None:
        store = AnswerStore(budget=64_000)
        store.get("k0", 1)
        for n in range(100):
            assert store.put(f"k{n}", self.answer(5_000))
            assert store.size <= store.budget
        assert len(store) == store.size // self.answer(5_000).size
        assert store.get("k0", 1) is None  # the least recently used went first
        assert store.get("k99", 1) is not None

    def test_an_answer_bigger_than_an_eighth_is_not_kept(self) -> None:
        store = AnswerStore(budget=80_000)
        store.get("k", 1)
        assert not store.put("k", self.answer(10_000))
        assert store.put("k", self.answer(9_000))

    def test_another_version_drops_every_answer(self) -> None:
        store = AnswerStore(budget=80_000)
        store.get("k", 1)
        store.put("k", self.answer(10))
        assert store.get("k", 2) is None and store.size == 0
        assert not store.put("k", self.answer(10, version=1))  # late, of the old version


async def test_version_reads_are_shared_and_never_older_than_the_call(
    engine: AsyncEngine, database_url: URL, clean_db: None
) -> None:
    versions = DataVersions(db.asyncpg_dsn(database_url))
    try:
        start = await versions.fresh()
        reads = versions.reads
        results = await asyncio.gather(*(versions.fresh() for _ in range(50)))
        assert set(results) == {start}
        assert versions.reads - reads <= 2  # one read in flight, one for all who came
        for n in range(5):
            async with engine.begin() as conn:
                await conn.execute(
                    text("INSERT INTO products VALUES (:n, 'P', 'C', 1)"), {"n": n + 1}
                )
            assert await versions.fresh() > start
            start = await versions.fresh()
    finally:
        await versions.close()
