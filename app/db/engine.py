"""How the service connects: the engine and its session dependency, and `connect()` for
raw asyncpg connections; every connection starts with the same session settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

# LLVM JIT is on by default wherever the server was built with it (Debian's PostgreSQL,
# most managed services; the embedded server has none) and compiles every statement
# estimated above `jit_above_cost`. A big upload's set-based statements are such
# statements: on Debian's 15, a 1M-order upload's summarizer spent 0.42-0.44 s compiling
# (0.37-0.43 s of it on one statement, inlined and optimized), which made it outlast
# the insert (auto_explain's JIT timings, benchmarks/RESULTS.md). Off for every
# connection of the service; a server without JIT ignores it.
JIT = "off"

APPLICATION_NAME = "orderlens"

# Every connection of the service, the engine's and the raw ones, starts with these.
SESSION_SETTINGS = {
    # Uploads stage files in temporary tables; let them live in memory.
    # Local buffers are allocated only as a session uses them.
    "temp_buffers": "256MB",
    # asyncpg prepares every statement; after five runs PostgreSQL would
    # switch to a generic plan, which for these analytic queries forgoes
    # parallel workers (top growth: 131 ms generic, 77 ms custom).
    "plan_cache_mode": "force_custom_plan",
    "jit": JIT,
}


def server_settings(application_name: str = APPLICATION_NAME) -> dict[str, str]:
    """SESSION_SETTINGS under `application_name`, as asyncpg's `server_settings`."""
    return {"application_name": application_name, **SESSION_SETTINGS}


def to_async_url(url: str | URL) -> URL:
    """A SQLAlchemy URL on the asyncpg driver, whatever postgres scheme was given."""
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.drivername in {"postgres", "postgresql", "postgresql+asyncpg"}:
        return parsed.set(drivername="postgresql+asyncpg")
    raise ValueError(f"not a PostgreSQL URL: {parsed.drivername}")


def asyncpg_dsn(url: URL) -> str:
    """The libpq-style DSN asyncpg takes, for raw connections (COPY)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def connect(
    url: URL | str, *, connect_timeout: float = 5, application_name: str = APPLICATION_NAME
) -> asyncpg.Connection:
    """A raw asyncpg connection to `url` (a SQLAlchemy URL, or the DSN `asyncpg_dsn`
    makes of one) with the session settings the engine's connections have."""
    dsn = url if isinstance(url, str) else asyncpg_dsn(url)
    return await asyncpg.connect(
        dsn, timeout=connect_timeout, server_settings=server_settings(application_name)
    )


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
        connect_args={"timeout": 5, "server_settings": server_settings()},
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


async def driver_connection(conn: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under a SQLAlchemy one, for COPY and raw statements."""
    raw = (await conn.get_raw_connection()).driver_connection
    assert raw is not None
    return raw
