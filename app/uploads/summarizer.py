"""Sum a big new-orders upload into its rollup cells on a second connection, while the
upload's own connection inserts the orders.

PostgreSQL runs a statement on one core, and the insert of a million orders, with its
key and indexes, keeps one busy for seconds. The summarizer puts the second core to
work meanwhile: it COPYs the same spooled bytes into a staging table of its own, sums
the rows the upload inserts (`sql.orders.sum_new`) and computes the rollup cells from
them (`rollups.summarize`). The upload then receives those sums by COPY into its own
transaction and merges them there, so readers still see the upload and its rollups
commit together, or neither. The new product-day cells, most of what it sends, are
spooled to a temporary file as soon as they are made: the upload writes them once its
insert is done while the summarizer still makes the other sums (the growth leaders,
the running units), which it ships at the end (`rollups.ship`).

It sees what the upload sees: it starts once the upload holds the merge lock, which
every writer of products, orders and rollups takes, and it writes nothing but its own
temporary tables, rolled back when it is done. Its sums are used only if they add up to
the orders and units the upload inserted; otherwise, or if it fails, the upload sums
for itself. A summarizer is started only when a pool connection is free.

It is never cancelled mid-statement. An upload that no longer needs it either lets it
finish (`close`) or, when the upload failed, `abandon`s it: its connection is closed and
never goes back to the pool, so a connection interrupted mid-statement can never answer
a later request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import AsyncIterator
from typing import IO, Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from app.analytics import rollups
from app.db import copy_in, driver_connection
from app.errors import database_gone
from app.uploads.plan import Plan
from app.uploads.sql import bookkeeping, orders, staging
from app.uploads.staging import SPOOL_READ_BYTES, GrowingSpool

log = logging.getLogger(__name__)

# The summarizer reads products and the rollups only, which the upload's merge lock
# keeps still; if it has to wait for a table lock, an exclusive one (a TRUNCATE, an
# ALTER) is queued behind the upload, which waits for the summarizer: a deadlock that
# PostgreSQL cannot see, since one of its edges is here. So it waits briefly, then
# fails, and the upload sums for itself.
LOCK_TIMEOUT = "1s"
# How long an abandoned summarizer may take to notice its closed connection.
ABANDON_SECONDS = 5.0
# Bytes of the new cells kept in memory; beyond, they are spooled to disk.
CELLS_IN_MEMORY = 1 << 20


class Summarizer:
    """One upload's summarizer: `start`, then `ship` once; `abandon` on failure."""

    def __init__(
        self, engine: AsyncEngine, spool: IO[bytes], plan: Plan, records: int, work_mem: str
    ) -> None:
        self._engine, self._spool, self._plan = engine, spool, plan
        self._records, self._work_mem = records, work_mem
        loop = asyncio.get_running_loop()
        # What the sums add up to, once the new cells are spooled; then the connection
        # whose other sums are ready to ship.
        self._cells: asyncio.Future[tuple[int, int]] = loop.create_future()
        self._ready: asyncio.Future[Any] = loop.create_future()
        self._cells_spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115 (closed by _wait)
            max_size=CELLS_IN_MEMORY, prefix="orderlens-cells-"
        )
        self._release = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None
        # For the upload's log: its own seconds (start to sums ready), and how long the
        # upload waited for them after its insert (0 when they were ready first).
        self.seconds: float | None = None
        self.waited = 0.0

    @staticmethod
    def can_start(engine: AsyncEngine) -> bool:
        """Whether a kept pool connection is idle: a summarizer never makes a request wait."""
        pool: Any = engine.pool
        return bool(pool.checkedout() < pool.size())

    def start(self, upload_id: int) -> None:
        self._spool.flush()  # it reads the spool's file, not the upload's buffer
        self._task = asyncio.create_task(self._run(upload_id))

    async def _run(self, upload_id: int) -> None:
        started = time.perf_counter()
        async with self._engine.connect() as sa_conn:
            conn = self._conn = await driver_connection(sa_conn)
            transaction = conn.transaction()
            try:
                await transaction.start()
                await conn.execute(bookkeeping.SET_LOCAL_NAME, f"orderlens summarizer {upload_id}")
                await self._summarize(conn)
                self.seconds = time.perf_counter() - started
                self._ready.set_result(conn)
                await self._release.wait()  # the upload ships the sums meanwhile
                await transaction.rollback()  # its tables were scratch
            except Exception as exc:
                for future in (self._cells, self._ready):
                    if not future.done():
                        future.set_exception(exc)
                await sa_conn.invalidate()  # stopped half-way: never back to the pool
            finally:
                for future in (self._cells, self._ready):
                    if not future.done():
                        future.set_exception(RuntimeError("the summarizer was abandoned"))

    async def _summarize(self, conn: asyncpg.Connection) -> None:
        await conn.execute(bookkeeping.SET_LOCAL_WORK_MEM, self._work_mem)
        await conn.execute(bookkeeping.SET_LOCAL_LOCK_TIMEOUT, LOCK_TIMEOUT)
        await conn.execute(staging.create(self._plan))
        status = await copy_in(
            conn,
            staging.table(self._plan),
            source=self._spooled(),
            columns=staging.copy_columns(self._plan),
            delimiter=self._plan.dialect.staged_delimiter,
        )
        if status != f"COPY {self._records}":
            raise RuntimeError(f"the summarizer staged {status!r}, not {self._records} rows")
        self._check()
        await rollups.open_deltas(conn)
        await conn.execute(orders.sum_new(self._plan), self._plan.header_lines)
        self._check()
        await rollups.summarize(conn, cells_made=lambda: self._spool_cells(conn))

    async def _spool_cells(self, conn: asyncpg.Connection) -> None:
        """Spool the new cells, and say what the sums add up to."""
        self._check()
        summed = await conn.fetchrow(rollups.SUMMED)

        async def write(chunk: bytes) -> None:
            self._cells_spool.write(chunk)

        query, _, _ = rollups.NEW_CELLS
        await conn.copy_from_query(query, output=write, format="binary")
        self._cells_spool.seek(0)
        self._cells.set_result((int(summed[0]), int(summed[1])))
        self._check()

    def _check(self) -> None:
        if self._release.is_set():
            raise RuntimeError("the summarizer was abandoned")  # stop between statements

    async def _spooled(self) -> AsyncIterator[bytes]:
        """The spooled file from its start, read by offset (the spool's own position is
        the upload's), as the careful path reads it."""
        spooled = GrowingSpool(self._spool)
        spooled.finish()  # complete: the upload staged all of it before starting this
        while chunk := await asyncio.to_thread(spooled.read, SPOOL_READ_BYTES):
            yield chunk

    async def ship(self, conn: asyncpg.Connection, *, orders: int, units: int) -> bool:
        """Send the sums into `conn`'s transaction, ready for `rollups.write`; False if
        there are none to send (the summarizer failed, or its sums do not add up to the
        `orders` and `units` inserted) and the caller must sum for itself: then nothing
        of them is left in it. Its connection ended, or a failure while sending, fails
        the upload, like any other of its statements."""
        try:
            summed = await self._waited_for(self._cells)
            if summed is None:
                return False
            if summed != (orders, units):
                log.warning("summarizer's sums %s are not the upload's %s", summed, (orders, units))
                return False
            _, table, columns = rollups.NEW_CELLS
            try:
                async with conn.transaction():  # a savepoint: gone if the rest never comes
                    await copy_in(
                        conn,
                        table,
                        source=self._spooled_cells(),
                        columns=list(columns),
                        format="binary",
                    )
                    source = await self._waited_for(self._ready)
                    if source is None:
                        raise _NotShipped
                    await rollups.ship(source, conn)
            except _NotShipped:
                return False
            return True
        finally:
            await self.close()

    async def _waited_for(self, future: asyncio.Future[Any]) -> Any:
        """What `future` gives, the time waited for it counted; None if the summarizer
        failed (logged). Its connection ended fails the upload."""
        waiting = time.perf_counter()
        try:
            return await future
        except Exception as exc:
            if database_gone(exc):
                # Its connection was ended (an operator stopping the upload, the server
                # going away): the upload stops too, as it would for its own.
                raise
            log.warning(
                "summarizer failed (%s: %s); the upload sums itself", type(exc).__name__, exc
            )
            return None
        finally:
            self.waited += time.perf_counter() - waiting

    async def _spooled_cells(self) -> AsyncIterator[bytes]:
        while chunk := await asyncio.to_thread(self._cells_spool.read, SPOOL_READ_BYTES):
            yield chunk

    async def close(self) -> None:
        """Let the summarizer roll back and give its connection back, once its current
        statement ends (it checks between statements)."""
        self._release.set()
        await self._wait()

    async def abandon(self) -> None:
        """The upload failed: close the summarizer's connection now (whatever it is
        doing, the server rolls it back), and let it go without its sums."""
        self._release.set()
        if self._conn is not None and not self._conn.is_closed():
            self._conn.terminate()
        await self._wait()

    async def _wait(self) -> None:
        if self._task is not None:
            with contextlib.suppress(Exception):  # TimeoutError included
                await asyncio.wait_for(asyncio.shield(self._task), ABANDON_SECONDS)
        for future in (self._cells, self._ready):
            if future.done() and not future.cancelled():
                future.exception()  # seen: asyncio would log it as never retrieved
        # Once nothing writes the spooled cells any more (the upload has read them).
        if self._task is None or self._task.done():
            self._cells_spool.close()
        else:
            self._task.add_done_callback(lambda _: self._cells_spool.close())


class _NotShipped(Exception):
    """The summarizer failed after its new cells were sent: they are rolled back."""
