"""COPY on asyncpg connections: in (failing at once if the connection dies), between two
connections (at once, or a few rows held in between), and long reads whose reader may go
away half-way."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.engine import driver_connection


@contextlib.asynccontextmanager
async def reading_connection(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
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


async def stop_reading(task: asyncio.Task[Any], conn: asyncpg.Connection | None) -> None:
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
    source: asyncpg.Connection,
    query: str,
    target: asyncpg.Connection,
    table: str,
    columns: tuple[str, ...],
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


CLOSED_DURING_COPY = "the connection closed during COPY"


async def copy_in(
    conn: asyncpg.Connection,
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


def tag_rows(status: str) -> int:
    """The rows of a command tag: `COPY 1000000`, `SELECT 400`, `INSERT 0 5`."""
    return int(status.rsplit(" ", 1)[-1])


async def copy_out(conn: asyncpg.Connection, query: str) -> bytes:
    """The rows of `query` as binary COPY data, held: for a few thousand rows that one
    connection makes and another, busy meanwhile, takes later (`copy_held_in`). Values
    pass as PostgreSQL wrote them (asyncpg would read the date 9999-12-31 as
    `date.max`, and write that back as infinity)."""
    chunks: list[bytes] = []

    async def keep(chunk: bytes) -> None:
        chunks.append(chunk)

    await conn.copy_from_query(query, output=keep, format="binary")
    return b"".join(chunks)


async def copy_held_in(
    conn: asyncpg.Connection, table: str, data: bytes, columns: tuple[str, ...]
) -> str:
    """COPY binary data from `copy_out` into `table` (`columns`)."""

    async def held() -> AsyncIterator[bytes]:
        yield data

    return await copy_in(conn, table, source=held(), columns=list(columns), format="binary")
