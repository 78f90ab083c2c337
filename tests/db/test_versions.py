"""The PostgreSQL versions Orderlens supports: an older server is refused by `/readyz`
(503 `unsupported_server`) and by `orderlens serve` and `migrate` (exit 1, before
migrating), a newer one is used with a warning.

No server older than 15 is installed here, so the real test server is judged with the
supported range moved above (or below) it: the version is still read from the server.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import URL

from app import db
from app.forecasting import runs
from tests.conftest import API_KEY, create_database, drop_database, open_client
from tests.helpers import app_for, assert_error, free_port


async def server_state(url: URL) -> tuple[str, int, bool]:
    """The server's version as it shows it ('15.18 (Debian …)' → '15.18'), its major,
    and whether the database has been migrated."""
    conn = await asyncpg.connect(db.asyncpg_dsn(url))
    try:
        shown = str(await conn.fetchval("SHOW server_version")).split()[0]
        migrated = await conn.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL")
    finally:
        await conn.close()
    return shown, int(shown.split(".")[0]), bool(migrated)


def sentence(shown: str, oldest: int, newest: int) -> str:
    return (
        f"This server runs PostgreSQL {shown}; Orderlens supports PostgreSQL {oldest} to {newest}."
    )


class TestReadiness:
    async def test_older_than_supported_is_unsupported_server(
        self, client: httpx.AsyncClient, database_url: URL, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        shown, major, _ = await server_state(database_url)
        monkeypatch.setattr(db.versions, "OLDEST_SUPPORTED_MAJOR", major + 1)
        monkeypatch.setattr(db.versions, "NEWEST_SUPPORTED_MAJOR", major + 3)
        error = assert_error(await client.get("/readyz"), 503, "unsupported_server")
        assert error["message"] == sentence(shown, major + 1, major + 3)
        assert error["details"] == {
            "database": "ok",
            "server_version": shown,
            "supported_versions": [major + 1, major + 2, major + 3],
        }
        assert (await client.get("/healthz")).status_code == 200

    async def test_oldest_supported_is_ready(
        self, client: httpx.AsyncClient, database_url: URL, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _, major, _ = await server_state(database_url)
        monkeypatch.setattr(db.versions, "OLDEST_SUPPORTED_MAJOR", major)
        monkeypatch.setattr(db.versions, "NEWEST_SUPPORTED_MAJOR", major)
        assert (await client.get("/readyz")).status_code == 200

    async def test_unsupported_comes_before_the_schema(
        self, pg_server: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """`orderlens serve` never migrates an old server: /readyz says why, not "behind"."""
        url = await create_database(pg_server, migrate=False)
        try:
            _, major, _ = await server_state(url)
            monkeypatch.setattr(db.versions, "OLDEST_SUPPORTED_MAJOR", major + 1)
            monkeypatch.setattr(db.versions, "NEWEST_SUPPORTED_MAJOR", major + 1)
            async for client in open_client(app_for(url, tmp_path)):
                assert_error(await client.get("/readyz"), 503, "unsupported_server")
        finally:
            await drop_database(pg_server, url)


def test_the_test_server_is_supported(database_url: URL) -> None:
    _, major, _ = asyncio.run(server_state(database_url))
    assert major in db.supported_majors()
    assert db.supported_majors() == [15, 16, 17, 18]


# The CLI in a process of its own, with the supported range moved above the real server
# before the command runs: its real exit status and standard error.
REFUSING_CLI = """
import sys
from app import cli, db
db.versions.OLDEST_SUPPORTED_MAJOR = int(sys.argv[1])
db.versions.NEWEST_SUPPORTED_MAJOR = int(sys.argv[1]) + 1
sys.argv = ["orderlens", *sys.argv[2:]]
cli.main()
"""


@pytest.mark.parametrize("command", [["serve"], ["migrate"]])
def test_the_cli_refuses_an_older_server_before_migrating(
    pg_server: URL, tmp_path: Path, command: list[str]
) -> None:
    url = asyncio.run(create_database(pg_server, migrate=False))
    try:
        shown, major, _ = asyncio.run(server_state(url))
        env = {
            **os.environ,
            "DATABASE_URL": url.render_as_string(hide_password=False),
            "ORDERLENS_DATA_DIR": str(tmp_path),
            "API_KEY": API_KEY,
            "PORT": str(free_port()),
        }
        # A CLI that let the server through would serve until the timeout: a failure.
        done = subprocess.run(
            [sys.executable, "-c", REFUSING_CLI, str(major + 1), *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 1, done.stderr
        assert done.stderr.strip().splitlines()[-1] == sentence(shown, major + 1, major + 2)
        assert "Orderlens on" not in done.stderr
        assert asyncio.run(server_state(url))[2] is False  # nothing migrated
    finally:
        asyncio.run(drop_database(pg_server, url))


def test_a_newer_server_is_used_with_a_warning(
    database_url: URL, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    shown, major, _ = asyncio.run(server_state(database_url))
    monkeypatch.setattr(db.versions, "OLDEST_SUPPORTED_MAJOR", major - 2)
    monkeypatch.setattr(db.versions, "NEWEST_SUPPORTED_MAJOR", major - 1)
    with caplog.at_level(logging.WARNING, logger="app.db"):
        db.require_supported_server(database_url)
    assert caplog.messages == [
        f"PostgreSQL {shown} is newer than the versions Orderlens supports"
        f" ({major - 2} to {major - 1})"
    ]


@pytest.mark.parametrize(
    ("version_num", "shown"),
    [(90624, "9.6.24"), (140011, "14.11"), (150018, "15.18"), (180000, "18.0")],
)
def test_version_text(version_num: int, shown: str) -> None:
    assert db.version_text(version_num) == shown


def test_the_oldest_supported_version_is_the_boundary() -> None:
    db.check_server_version(150000)
    with pytest.raises(db.UnsupportedServer) as refused:
        db.check_server_version(140020)
    assert str(refused.value) == sentence("14.20", 15, 18)


async def test_the_service_s_connections_run_without_jit(database_url: URL, clean_db: None) -> None:
    """Servers built with LLVM (Debian's, most managed ones) JIT-compile big statements
    by default: 0.4 s of a 1M-order upload's rollups on Debian's 15. The embedded server
    has no JIT, so only the setting shows it: on the engine's connections and on a
    forecast run's own."""
    engine = db.create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            driver = await db.driver_connection(conn)
            assert await driver.fetchval("SHOW jit") == "off"
            assert await driver.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
    finally:
        await engine.dispose()
    handle = await runs.start(url=database_url, horizon=7, engine_name="local")
    try:
        assert await handle.conn.fetchval("SHOW jit") == "off"
    finally:
        await handle.conn.close()


def test_a_business_timezone_the_server_does_not_know_stops_the_start(database_url: URL) -> None:
    """The uploads read date-times in BUSINESS_TIMEZONE on the server: a name its time
    zone data lacks (which Python's may have) is refused before serving, not met as a
    failed statement in every upload of date-times."""
    db.require_known_timezone(database_url, "America/Sao_Paulo")
    with pytest.raises(db.UnknownTimezone, match="Mars/Olympus_Mons"):
        db.require_known_timezone(database_url, "Mars/Olympus_Mons")
