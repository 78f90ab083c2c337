"""The embedded PostgreSQL: started from the wheel, reused across runs, never left behind."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import psutil
import pytest
from sqlalchemy import URL

from app import db
from app.config import Settings
from app.main import create_app
from tests.conftest import open_client


def postmaster_pid(pgdata: Path) -> int | None:
    pidfile = pgdata / "postmaster.pid"
    return int(pidfile.read_text().split()[0]) if pidfile.exists() else None


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class TestEmbedded:
    async def test_lifespan_starts_and_stops_the_server(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # The embedded server is the point, also in a run on DATABASE_URL's server.
        monkeypatch.delenv("DATABASE_URL", raising=False)
        settings = Settings(_env_file=None, orderlens_data_dir=tmp_path, api_key="k")
        assert settings.embedded
        pgdata = tmp_path / "postgres" / "pgdata"
        async for client in open_client(create_app(settings)):
            found = postmaster_pid(pgdata)
            assert found is not None
            pid = found
            assert alive(pid)
            # Not migrated yet: reachable, but the schema is behind.
            response = await client.get("/readyz")
            assert response.status_code == 503
            assert response.json()["error"]["details"]["database"] == "ok"
        await asyncio.sleep(0.2)
        assert postmaster_pid(pgdata) is None
        assert not alive(pid)

    def test_data_survives_a_restart(self, tmp_path: Path) -> None:
        first = db.start_embedded(tmp_path)
        url = asyncio.run(db.ensure_database(first.url, "kept"))
        asyncio.run(_execute(url, "CREATE TABLE marker (x int); INSERT INTO marker VALUES (42)"))
        first.release()
        assert postmaster_pid(tmp_path / "pgdata") is None

        second = db.start_embedded(tmp_path)
        try:
            assert (
                asyncio.run(_fetchval(second.url.set(database="kept"), "SELECT x FROM marker"))
                == 42
            )
        finally:
            second.release()

    def test_cli_migrate_leaves_no_server_running(self, tmp_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env["ORDERLENS_DATA_DIR"] = str(tmp_path)
        result = subprocess.run(
            [sys.executable, "-m", "app.cli", "migrate"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "schema at" in result.stderr
        assert postmaster_pid(tmp_path / "postgres" / "pgdata") is None


async def _execute(url: URL, sql: str) -> None:
    conn = await asyncpg.connect(db.asyncpg_dsn(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _fetchval(url: URL, sql: str) -> object:
    conn = await asyncpg.connect(db.asyncpg_dsn(url))
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()
