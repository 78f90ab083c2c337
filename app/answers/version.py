"""The data version as this process may trust it: read from the database, never older than
the moment it is asked for.

Every cached answer is looked up under a version that a read *begun after the request
arrived* returned, so an upload that committed before the request cannot be missed,
whichever worker process it ran in. Reads are shared: while one is in flight, callers
that arrive wait for the next, which starts as soon as it ends and serves all of them.
Under load one round trip serves many requests; alone, a request pays one (on a
connection of its own, outside the pool: a busy pool never delays a cached answer).
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg

from app import db

# An empty table reads as 0 (nothing written since the schema was made).
READ = "SELECT coalesce((SELECT version FROM data_version), 0)"
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 5.0


class DataVersions:
    """Fresh reads of `data_version`, shared by the callers that overlap."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: asyncpg.Connection | None = None
        self._next: asyncio.Future[int] | None = None
        self._task: asyncio.Task[None] | None = None
        self.reads = 0

    async def fresh(self) -> int:
        """The version committed when a read that began after this call ran."""
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            if self._task is None:
                self._task = asyncio.create_task(self._serve())
        # Shielded: one caller giving up must not cancel the read the others wait for.
        return await asyncio.shield(self._next)

    async def _serve(self) -> None:
        try:
            while self._next is not None:
                waiting, self._next = self._next, None
                try:
                    version = await self._read()
                except Exception as exc:
                    if not waiting.done():
                        waiting.set_exception(exc)
                        waiting.exception()  # retrieved: callers that left never will
                    continue
                if not waiting.done():
                    waiting.set_result(version)
        finally:
            self._task = None

    async def _read(self) -> int:
        if self._conn is None or self._conn.is_closed():
            self._conn = await db.connect(
                self._dsn,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                application_name="orderlens data version",
            )
        try:
            self.reads += 1
            version: int = await self._conn.fetchval(READ, timeout=READ_TIMEOUT_SECONDS)
        except BaseException:
            # Whatever happened to it, the next read starts on a new connection.
            await self.close()
            raise
        return version

    async def close(self) -> None:
        """Drop the connection (the next read opens another)."""
        conn, self._conn = self._conn, None
        task = self._task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.terminate()
