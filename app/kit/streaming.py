"""Big CSV answers streamed from PostgreSQL's COPY, with backpressure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import reading_connection, stop_reading

COPY_QUEUE_CHUNKS = 8  # ~8 × 64 KiB in flight at most: memory stays flat however big


async def copy_csv(
    engine: AsyncEngine, query: str, *args: Any, header: bytes = b""
) -> AsyncIterator[bytes]:
    """`header`, then `COPY (query) TO STDOUT (FORMAT csv)`, as a stream of bytes with
    backpressure: the database waits while the client reads slowly, and stops if it goes
    away. Nothing comes out before the connection is had (see kit.csv.CsvResponse)."""
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=COPY_QUEUE_CHUNKS)
    reading: asyncpg.Connection | None = None  # the COPY's connection, once had
    gone = False  # the reader went away: drop what still comes

    async def put(data: bytes | bytearray | memoryview) -> None:
        if not gone:
            await queue.put(bytes(data))

    async def produce() -> None:
        nonlocal reading
        try:
            async with reading_connection(engine) as conn:
                reading = conn
                if header:
                    await put(header)
                await conn.copy_from_query(query, *args, output=put, format="csv")
        finally:
            if not gone:
                await queue.put(None)

    task = asyncio.create_task(produce())
    try:
        while (chunk := await queue.get()) is not None:
            yield chunk
        await task  # its error, if it had one
    finally:
        gone = True
        while not queue.empty():  # a put waiting for room returns
            queue.get_nowait()
        await stop_reading(task, reading)
