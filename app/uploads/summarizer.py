"""Sum a big new-orders upload into its rollup cells on a second connection, while the
upload's own connection inserts the orders (the why: docs/decisions/, the decisions on
the summarizer, 2026-11-26 and 2026-12-07).

PostgreSQL runs a statement on one core, and the insert of a million orders keeps one
busy for seconds. The summarizer COPYs the same spooled bytes into a staging table of
its own (following the spool while the fast path stages it: `early_start.EarlyStart`),
sums the rows the upload inserts (`sql.orders.sum_whole`, or `sum_new` for a file not
whole) and computes the rollup cells from them (`rollups.summarize`). The upload
receives those sums by COPY into its own transaction, so readers see the upload and its
rollups commit together, or neither: what is new as soon as it is made
(`rollups.SENT_EARLY`: the cells, then the leaders), the rest at the end (`ship`).

Until the upload says `go` (it then holds the merge lock, which every writer of products,
orders and rollups takes, so the sums see what it sees) the summarizer reads nothing but
its own temporary tables: it checks the rows and prices and hands them to the upload
(`RowChecks`; the upload waits for them once they are under way), which checks the dates
and hands them back (`dates_checked`, taken if there when needed). A file of date-times
whose rows and prices passed is summed before the upload's dates come (`_summed_ahead`),
and again if they were not none. Its sums are used only if they add up to what the
upload inserted; otherwise, or if it fails, the upload sums for itself. An upload that
does not need it lets it go (`let_go`); one whose file takes the careful path, or that
fails, `abandon`s it: its connection is closed, never back to the pool, never cancelled
mid-statement.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from typing import IO, Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from app.analytics import rollups
from app.db import copy_held_in, copy_in, copy_out, driver_connection, tag_rows
from app.errors import database_gone
from app.uploads import fixed_offset
from app.uploads.plan import Plan, UploadRun
from app.uploads.sql import bookkeeping, orders, staging
from app.uploads.staging import SPOOL_READ_BYTES, GrowingSpool
from app.uploads.whole import SENT_CHECKS_MAX, in_cents

log = logging.getLogger(__name__)

# The summarizer reads products and the rollups only, which the upload's merge lock
# keeps still; if it waits for a table lock, an exclusive one (a TRUNCATE, an ALTER) is
# queued behind the upload, which waits for it: a deadlock PostgreSQL cannot see (one
# edge is here). So it waits briefly, then fails, and the upload sums for itself.
LOCK_TIMEOUT = "1s"
# How long an abandoned summarizer may take to notice its closed connection.
ABANDON_SECONDS = 5.0
# Bytes of each sum sent early kept in memory; beyond, they are spooled to disk.
EARLY_IN_MEMORY = 1 << 20
_SPOOL = partial(tempfile.SpooledTemporaryFile, max_size=EARLY_IN_MEMORY, prefix="orderlens-sums-")
# Summarizers let go, until they have rolled back.
_LET_GO: set[asyncio.Task[None]] = set()


@dataclass(frozen=True)
class RowChecks:
    """The summarizer's half of a whole file's checks, for the upload's verdict: the rows
    it staged and their units, whether every row passes its own checks, and its checked
    prices (`orders.WHOLE_PRICES`' rows as binary COPY data; none without
    `unit_price`). The upload checks the dates meanwhile (`Summarizer.dates_checked`)."""

    rows: int
    units: int
    rows_pass: bool
    prices: bytes | None
    offset: str | None = None  # the zone's one offset through the file (`fixed_offset`)


class Summarizer:
    """One upload's summarizer: `start`, `go`, then `ship` once; `close` if it is not
    needed, `abandon` on failure."""

    def __init__(self, engine: AsyncEngine, spool: GrowingSpool, plan: Plan, work_mem: str) -> None:
        self._engine, self.spool, self._plan, self._work_mem = engine, spool, plan, work_mem
        loop = asyncio.get_running_loop()
        # The upload's settled plan and the records it staged, once it holds the lock.
        self._go: asyncio.Future[tuple[Plan, int]] = loop.create_future()
        # What the sums add up to, once the new cells are spooled; each batch sent early
        # spooled; then the connection whose other sums are ready to ship.
        self._cells: asyncio.Future[tuple[int, int]] = loop.create_future()
        self._spooled = [loop.create_future() for _ in rollups.SENT_EARLY]
        self._ready: asyncio.Future[Any] = loop.create_future()
        # What it sends early (`rollups.SENT_EARLY`): a spool each (closed by `_retrieved`).
        self._early: list[list[IO[bytes]]] = [[_SPOOL() for _ in b] for b in rollups.SENT_EARLY]
        # The checks, split: the summarizer checks the rows and prices as soon as it has
        # staged them, the upload the dates; each sends the other what it found (None:
        # the other checks for itself).
        self._rows_checked: asyncio.Future[RowChecks | None] = loop.create_future()
        self._staged = asyncio.Event()  # its copy of the file staged: its checks under way
        self._dates_checked: asyncio.Future[tuple[bytes, int] | None] = loop.create_future()
        self._rows_pass = False
        self._cents = False  # its sums may count money in integer cents (`in_cents`)
        # Whether it may sum before the upload's dates come (`_summed_ahead`), and how that
        # went: "" (it did not), "kept", or "summed again" (the guess was wrong).
        self._may_sum_ahead = False
        self.ahead = ""
        self._release = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None
        # For the upload's log: its own seconds (start to sums ready), and how long the
        # upload waited for them after its insert (0 when they were ready first).
        self.seconds: float | None = None
        self.waited = 0.0
        self.checks_taken = False  # the upload took its checks of the rows (`rows_checked`)

    @staticmethod
    def can_start(engine: AsyncEngine) -> bool:
        """Whether a kept pool connection is idle: a summarizer never makes a request wait."""
        pool: Any = engine.pool
        return bool(pool.checkedout() < pool.size())

    @classmethod
    def following(cls, run: UploadRun, plan: Plan) -> Summarizer:
        """A summarizer started on the upload's spool as it stands, its COPY following
        the spool as it grows (`spool.grew`) until `spool.finish()`."""
        run.spool.flush()  # it reads the spool's file, not the upload's buffer
        summarizer = cls(run.engine, GrowingSpool(run.spool), plan, run.limits.work_mem)
        summarizer.start(run.upload_id)
        return summarizer

    @classmethod
    def on_the_whole_spool(cls, run: UploadRun, plan: Plan) -> Summarizer:
        """A summarizer started on a file staged whole."""
        summarizer = cls.following(run, plan)
        summarizer.spool.finish()
        return summarizer

    def start(self, upload_id: int) -> None:
        """Stage the spool (as it grows, until it is finished), then wait for `go`."""
        self._task = asyncio.create_task(self._run(upload_id))

    def go(self, plan: Plan, records: int) -> None:
        """Sum: the upload holds the merge lock, its plan is settled and it staged
        `records` rows."""
        self._go.set_result((plan, records))

    async def _run(self, upload_id: int) -> None:
        started = time.perf_counter()
        async with self._engine.connect() as sa_conn:
            conn = self._conn = await driver_connection(sa_conn)
            transaction = conn.transaction()
            try:
                await transaction.start()
                await conn.execute(bookkeeping.SET_LOCAL_NAME, f"orderlens summarizer {upload_id}")
                if await self._summarize(conn):
                    self.seconds = time.perf_counter() - started
                    self._ready.set_result(conn)
                    await self._release.wait()  # the upload ships the sums meanwhile
                await transaction.rollback()  # its tables were scratch
            except _Released:
                try:
                    await transaction.rollback()  # between statements: the connection is sound
                except Exception:
                    await sa_conn.invalidate()  # closed under it (`abandon`)
            except Exception as exc:
                for future in self._outcomes():
                    if not future.done():
                        future.set_exception(exc)
                await sa_conn.invalidate()  # stopped half-way: never back to the pool
            finally:
                for future in self._outcomes():
                    if not future.done():
                        future.set_exception(RuntimeError("the summarizer was abandoned"))

    def _outcomes(self) -> tuple[asyncio.Future[Any], ...]:
        """What it tells the upload."""
        return (self._rows_checked, self._cells, *self._spooled, self._ready)

    async def _summarize(self, conn: asyncpg.Connection) -> bool:
        """Stage, wait for `go`, and sum; False if the upload let it go first."""
        await conn.execute(bookkeeping.SET_LOCAL_WORK_MEM, self._work_mem)
        await conn.execute(bookkeeping.SET_LOCAL_LOCK_TIMEOUT, LOCK_TIMEOUT)
        await conn.execute(bookkeeping.SET_LOCAL_NO_IDLE_TIMEOUT)
        await conn.execute(staging.create(self._plan))
        status = await copy_in(
            conn,
            staging.table(self._plan),
            source=_read(self.spool),
            columns=staging.copy_columns(self._plan),
            delimiter=self._plan.dialect.staged_delimiter,
        )
        self._staged.set()
        self._check()
        await self._check_rows(conn, status)
        if not await self._until(self._go):
            return False  # not needed: the upload closed it
        plan, records = self._go.result()
        if status != f"COPY {records}":
            raise RuntimeError(f"the summarizer staged {status!r}, not {records} rows")
        self._check()
        await rollups.open_deltas(conn)
        whole = orders.may_load_whole(plan)
        if not (self._may_sum_ahead and whole and await self._summed_ahead(conn, plan)):
            # The upload's dates if they are there; otherwise it checks its own rather
            # than wait (the upload may still be settling, or staging had no summarizer).
            sent = self._dates_checked.result() if self._dates_checked.done() else None
            if whole and await self._check_dates(conn, sent):
                await conn.execute(orders.sum_whole(plan, cents=self._cents))
            else:
                await conn.execute(orders.sum_new(plan), plan.header_lines)
        self._check()
        await rollups.summarize(conn, made=lambda batch: self._spool_early(conn, batch))
        return True

    async def _until(self, future: asyncio.Future[Any]) -> bool:
        """Wait for `future`; False if the upload lets the summarizer go first."""
        released: asyncio.Future[Any] = asyncio.ensure_future(self._release.wait())
        try:
            await asyncio.wait({future, released}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            released.cancel()
        return future.done()

    async def _check_rows(self, conn: asyncpg.Connection, status: str) -> None:
        """The first half of the verdict the upload finds (`orders.verdict`), made while
        the upload still stages or settles, since it reads only the staged rows: whether
        every staged row passes its own checks, and each distinct price checked once
        (`WHOLE_PRICES`). Sent to the upload (`rows_checked`), which checks the dates
        meanwhile."""
        plan = self._plan
        prices: bytes | None = None
        few = True
        if create := orders.create_whole_prices(plan):
            made = await conn.execute(create)
            await conn.execute(orders.ANALYZE_WHOLE_PRICES)
            self._check()
            few = tag_rows(made) <= SENT_CHECKS_MAX
            prices = await copy_out(conn, orders.SELECT_WHOLE_PRICES) if few else None
        self._check()
        rows, units, rows_pass, all_timed, first, last = await conn.fetchrow(
            orders.row_verdict(plan)
        )
        self._rows_pass = bool(rows_pass)
        self._cents = self._rows_pass and await in_cents(conn, plan, units)
        offset = await fixed_offset.settle(conn, plan, first, last, rows) if rows_pass else None
        found = RowChecks(rows, units, self._rows_pass, prices, offset) if few else None
        self._rows_checked.set_result(found)
        if self._rows_pass and all_timed:
            self._may_sum_ahead = bool(await conn.fetchval(orders.prices_pass(plan)))

    async def _summed_ahead(self, conn: asyncpg.Connection, plan: Plan) -> bool:
        """Sum the file as whole before the upload's dates come, when every row and price
        passed and every date is a date-time read on its row: the dates the upload
        checks are then most often none, and the guess is right if it sends none
        (`WHOLE_DATES` empty: every date-time's parts passed). If it sends some, or none
        at all (it will not check them), or a value of those it would have sent fails
        the sums' reading of it on its row, the sums are rolled back (a savepoint) and
        made again the usual way; False then."""
        self.ahead = "summed again"
        try:
            async with conn.transaction():
                await conn.execute(orders.create_whole_dates(plan, to_fill=True))
                await conn.execute(orders.sum_whole(plan, cents=self._cents))
                if not await self._until(self._dates_checked):
                    raise _Released
                sent = self._dates_checked.result()
                if sent is None or sent[1] > 0:
                    raise _GuessedWrong
        except (_GuessedWrong, asyncpg.DataError):  # a value of the dates it did not know
            return False
        self.ahead = "kept"
        return True

    async def _check_dates(self, conn: asyncpg.Connection, dates: tuple[bytes, int] | None) -> bool:
        """The second half: the distinct dates the upload checked (`dates`: binary COPY
        data of `WHOLE_DATES`, and its rows), or, if it sent none, checked here; then
        whether the file is whole. Then its sums need not judge the rows again."""
        plan = self._plan
        self._check()
        if dates is None:
            await conn.execute(orders.create_whole_dates(plan))
        else:
            await conn.execute(orders.create_whole_dates(plan, to_fill=True))
            await copy_held_in(conn, orders.WHOLE_DATES, dates[0], orders.WHOLE_DATES_COLUMNS)
        await conn.execute(orders.ANALYZE_WHOLE_DATES)
        self._check()
        return self._rows_pass and bool(await conn.fetchval(orders.values_pass(plan)))

    async def rows_checked(self) -> RowChecks | None:
        """The summarizer's half of the checks (`RowChecks`), of as many rows as the upload
        staged (`go`): waited for if it has staged its copy of the file (they are under
        way, and take it less than the upload's own would); None if not, or if it failed,
        and the upload checks for itself."""
        future = self._rows_checked
        if self._staged.is_set():
            await asyncio.wait({future})  # it sets an outcome, whatever happens
        if not (future.done() and self._go.done()) or future.exception() is not None:
            return None
        found, (_, records) = future.result(), self._go.result()
        self.checks_taken = found is not None and found.rows == records
        return found if self.checks_taken else None

    def dates_checked(self, dates: tuple[bytes, int] | None) -> None:
        """The upload's checked dates (`WHOLE_DATES`' rows by `copy_out`, and how many), or
        None: the summarizer checks its own. It takes them if they are there when it
        needs them (its sums made ahead wait for them); the upload sends them as soon as
        it has them, or None as soon as it knows it will not check them. Only the first
        call counts."""
        if not self._dates_checked.done():
            self._dates_checked.set_result(dates)

    async def _spool_early(self, conn: asyncpg.Connection, batch: int) -> None:
        """Spool a batch sent early; with the first, say what the sums add up to."""
        self._check()
        summed = await conn.fetchrow(rollups.SUMMED) if batch == 0 else None
        sent = rollups.SENT_EARLY[batch]
        for spool, (query, _, _) in zip(self._early[batch], sent, strict=True):

            async def write(chunk: bytes, spool: IO[bytes] = spool) -> None:
                spool.write(chunk)

            await conn.copy_from_query(query, output=write, format="binary")
            spool.seek(0)
        if summed is not None:
            self._cells.set_result((int(summed[0]), int(summed[1])))
        self._spooled[batch].set_result(True)
        self._check()

    def _check(self) -> None:
        if self._release.is_set():
            raise _Released  # stop between statements

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
            try:
                async with conn.transaction():  # a savepoint: gone if the rest never comes
                    await self._send_early(conn)
                    source = await self._waited_for(self._ready)
                    if source is None:
                        raise _NotShipped
                    await rollups.ship(source, conn)
            except _NotShipped:
                return False
            return True
        finally:
            await self.close()

    async def _send_early(self, conn: asyncpg.Connection) -> None:
        """COPY each batch sent early into the rollups, as soon as it is spooled."""
        batches = zip(self._early, rollups.SENT_EARLY, self._spooled, strict=True)
        for spools, sent, spooled in batches:
            if not await self._waited_for(spooled):
                raise _NotShipped
            for spool, (_, table, columns) in zip(spools, sent, strict=True):
                source = _read(spool)
                await copy_in(conn, table, source=source, columns=[*columns], format="binary")

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

    async def close(self) -> None:
        """Let the summarizer roll back and give its connection back, once its current
        statement ends (it checks between statements)."""
        self._release.set()
        await self._wait()

    def let_go(self) -> None:
        """The upload does not need it after all (started while staging): it rolls back
        and gives its connection back after its current statement; no one waits."""
        self._release.set()
        if self._task is not None and not self._task.done():
            _LET_GO.add(self._task)  # asyncio keeps no strong reference to a task
            self._task.add_done_callback(_LET_GO.discard)
            self._task.add_done_callback(lambda _: self._retrieved())
        else:
            self._retrieved()

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
        if self._task is None or self._task.done():
            self._retrieved()
        else:
            self._task.add_done_callback(lambda _: self._retrieved())

    def _retrieved(self) -> None:
        """Its outcomes seen (asyncio would log them as never retrieved) and its spooled
        cells closed, once nothing writes them any more (the upload has read them)."""
        for future in self._outcomes():
            if future.done() and not future.cancelled():
                future.exception()
        for spools in self._early:
            for spool in spools:
                spool.close()


async def _read(spool: IO[bytes] | GrowingSpool) -> AsyncIterator[bytes]:
    """A file's bytes to its end, read off the event loop: a spool of sums, or the
    upload's spooled file by offset, waiting while it grows until the upload finishes it."""
    while chunk := await asyncio.to_thread(spool.read, SPOOL_READ_BYTES):
        yield chunk


class _Released(Exception):
    """The upload let the summarizer go: it stops between two statements."""


class _GuessedWrong(Exception):
    """The upload checked dates the summarizer's sums made ahead did not know of."""


class _NotShipped(Exception):
    """The summarizer failed after its new cells were sent: they are rolled back."""
