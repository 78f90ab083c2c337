"""One upload, end to end: stream the file into a staging table, judge every row in
SQL, then merge, quarantine, update the rollups and write the report, all in one
transaction. Either all of it commits or none of it does.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from app import logs
from app.analytics import rollups
from app.db import driver_connection
from app.errors import AppError
from app.uploads import parsing, queries
from app.uploads import summarizer as summarizers
from app.uploads.errors import EmptyFile, NotUtf8, UploadError
from app.uploads.models import OnConflict, UploadKind
from app.uploads.multipart import FilePartReader
from app.uploads.rules import RULES

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_SECONDS = 1.0
UPLOAD_WORK_MEM = "256MB"


@dataclass
class Progress:
    """What an upload has read so far; written to its row while it runs."""

    bytes_received: int = 0
    records_seen: int = 0
    sha256: Any = field(default_factory=hashlib.sha256)


class _Clock:
    """Seconds spent in each phase of an upload, for the log."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = self.laps.get(name, 0.0) + now - self._last
        self._last = now

    def __str__(self) -> str:
        return " ".join(f"{name} {seconds:.2f}s" for name, seconds in self.laps.items())


class _Fallback(Exception):
    """The fast path cannot take this file; parse it carefully instead."""


async def ingest(
    *,
    engine: AsyncEngine,
    kind: UploadKind,
    on_conflict: OnConflict,
    content_type: str | None,
    body: AsyncIterator[bytes],
    max_bytes: int,
    summarizer_min_rows: int,
) -> int:
    """Load one uploaded file; returns the upload id. File-level errors are raised as
    UploadError (the upload is recorded as failed, with the id in `details`)."""
    reader = FilePartReader(content_type, max_bytes=max_bytes)
    chunks = reader.read(body)
    progress = Progress()
    # The part headers come before the data: after the first chunk the filename is known.
    first = await anext(chunks, b"")
    async with engine.connect() as sa_conn:
        conn = await driver_connection(sa_conn)
        upload_id = await _create_upload(conn, kind, on_conflict, reader.filename)
        logs.bind(upload_id=upload_id)  # on every record of the request from here on
        log.info("upload %s: %s %r started", upload_id, kind.value, reader.filename)
        reporter = asyncio.create_task(_report_progress(engine, upload_id, progress))
        try:
            stream = _tap(first, chunks, progress)
            await _load(
                engine, conn, upload_id, kind, on_conflict, stream, progress, reporter,
                summarizer_min_rows,
            )  # fmt: skip
        except BaseException as exc:
            reporter.cancel()
            await _fail(engine, upload_id, exc, progress)
            if isinstance(exc, AppError):
                exc.details = {**(exc.details or {}), "upload_id": upload_id}
            raise
        finally:
            reporter.cancel()
            with contextlib.suppress(Exception):
                await conn.execute(
                    queries.RELEASE_UPLOAD_LOCK, queries.UPLOAD_LOCK_BASE + upload_id
                )
    return upload_id


async def _create_upload(
    conn: Any, kind: UploadKind, on_conflict: OnConflict, filename: str | None
) -> int:
    """Record the upload as running, holding a session lock that says it is alive."""
    async with conn.transaction():
        upload_id: int = await conn.fetchval(
            queries.CREATE_UPLOAD,
            kind.value,
            filename,
            on_conflict.value,
        )
        await conn.execute(queries.TAKE_UPLOAD_LOCK, queries.UPLOAD_LOCK_BASE + upload_id)
    return upload_id


async def _tap(
    first: bytes, rest: AsyncIterator[bytes], progress: Progress
) -> AsyncIterator[bytes]:
    """The file's bytes, counted and hashed on the way."""
    if first:
        progress.bytes_received += len(first)
        progress.sha256.update(first)
        yield first
    async for chunk in rest:
        progress.bytes_received += len(chunk)
        progress.sha256.update(chunk)
        yield chunk


async def _report_progress(engine: AsyncEngine, upload_id: int, progress: Progress) -> None:
    """Write bytes and records read so far to the upload's row, every second."""
    while True:
        await asyncio.sleep(PROGRESS_INTERVAL_SECONDS)
        try:
            await _apart(
                engine,
                queries.WRITE_PROGRESS,
                upload_id,
                progress.bytes_received,
                progress.records_seen,
            )
        except Exception as exc:  # progress is best effort; the load decides the outcome
            log.debug("upload %s: progress not written (%s)", upload_id, type(exc).__name__)


async def _load(
    engine: AsyncEngine,
    conn: Any,
    upload_id: int,
    kind: UploadKind,
    on_conflict: OnConflict,
    stream: AsyncIterator[bytes],
    progress: Progress,
    reporter: asyncio.Task[None],
    summarizer_min_rows: int,
) -> None:
    rules = RULES[kind]
    with tempfile.TemporaryFile(prefix="orderlens-upload-") as spool:
        async with conn.transaction():
            # Sorts and hashes over a million staged rows stay in memory, for this
            # transaction only.
            await conn.execute(queries.SET_LOCAL_WORK_MEM, UPLOAD_WORK_MEM)
            await conn.execute(queries.create_stage(kind))
            header_text, rest = await parsing.split_header(stream)
            header = parsing.parse_header(header_text, rules.required)
            clock = _Clock()
            fast = await _stage(conn, kind, header, rest, stream, spool, progress)
            clock.lap("stage")
            staged = queries.FAST[kind].table if fast else queries.stage_table(kind)

            rows_total: int = await conn.fetchval(queries.count_rows(staged))
            if rows_total == 0:
                raise EmptyFile("The file has a header but no rows.")
            progress.records_seen = rows_total
            reporter.cancel()  # the row is written once more below, with the outcome

            await conn.execute(queries.TAKE_MERGE_LOCK, queries.MERGE_LOCK_KEY)
            clock.lap("wait")
            summarizer = None
            if (
                kind is UploadKind.ORDERS
                and fast
                and rows_total >= summarizer_min_rows
                and summarizers.Summarizer.can_start(engine)
            ):
                summarizer = summarizers.Summarizer(
                    engine, spool, list(header.order), header.lines, rows_total, UPLOAD_WORK_MEM
                )
            try:
                counts = await _judge(
                    conn, kind, on_conflict, header, rows_total, staged, fast, clock, summarizer
                )
                clock.lap("count")
                await _merge(conn, upload_id, kind, header, counts, fast, clock)
            finally:
                if summarizer is not None:
                    await summarizer.close()
            await conn.execute(
                queries.FINISH_UPLOAD,
                upload_id,
                progress.sha256.hexdigest(),
                header.columns,
                json.dumps(header.warnings),
                progress.bytes_received,
                rows_total,
                counts.inserted,
                counts.updated,
                counts.unchanged,
                counts.rejected,
                json.dumps(counts.by_code),
            )
        log.info(
            "upload %s: %s rows by the %s path; %s",
            upload_id,
            rows_total,
            "fast" if fast else "careful",
            clock,
        )


async def _stage(
    conn: Any,
    kind: UploadKind,
    header: parsing.Header,
    rest: bytes,
    stream: AsyncIterator[bytes],
    spool: IO[bytes],
    progress: Progress,
) -> bool:
    """COPY the data rows into staging, by the fast path when it can; True if it did."""
    path = queries.FAST[kind]
    fast = _FastSource(rest, stream, spool, progress, path.allowed)
    if header.exact and fast.possible:
        try:
            async with conn.transaction():  # a savepoint: a failed attempt leaves nothing
                if path.create is not None:
                    await conn.execute(path.create)
                await conn.copy_to_table(
                    path.table, source=fast.chunks(), columns=list(header.order), format="csv"
                )
                if not fast.possible:
                    raise _Fallback
                staged = await conn.fetchval(queries.count_rows(path.table))
                if staged != fast.expected_records():
                    raise _Fallback  # blank lines or a record over several lines
                return True
        except (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError):
            raise NotUtf8("The file is not valid UTF-8 (or contains NUL bytes).") from None
        except (_Fallback, asyncpg.BadCopyFileFormatError, asyncpg.DataError):
            log.debug("fast path declined; parsing the file carefully")
        await fast.drain()
    else:
        spool.write(rest)
        async for chunk in stream:
            spool.write(chunk)
    spool.flush()
    columns = ["line", "bad_count", "raw", *RULES[kind].required]

    def seen(records: int) -> None:
        progress.records_seen = records

    source = _in_thread(parsing.careful_rows(spool, header, RULES[kind].required, seen))
    try:
        await conn.copy_to_table(
            queries.stage_table(kind), source=source, columns=columns, format="csv"
        )
    except (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError):
        raise NotUtf8("The file is not valid UTF-8 (or contains NUL bytes).") from None
    return False


class _FastSource:
    """Feeds the raw bytes to COPY while they stay fit for the fast path; spools all."""

    def __init__(
        self,
        rest: bytes,
        stream: AsyncIterator[bytes],
        spool: IO[bytes],
        progress: Progress,
        allowed: bytes | None,
    ) -> None:
        self.rest, self.stream, self.spool, self.progress = rest, stream, spool, progress
        self.allowed = allowed
        self.possible = parsing.fast_path_possible(rest, allowed)
        self.lines = 0
        self.last = b""

    async def chunks(self) -> AsyncIterator[bytes]:
        if self._take(self.rest):
            yield self.rest
        async for chunk in self.stream:
            if self._take(chunk):
                yield chunk
            elif not self.possible:
                return

    def _take(self, chunk: bytes) -> bool:
        self.spool.write(chunk)
        if not chunk:
            return False
        if not parsing.fast_path_possible(chunk, self.allowed):
            self.possible = False
            return False
        self.lines += parsing.count_records(chunk)
        self.last = chunk
        self.progress.records_seen = self.lines
        return True

    def expected_records(self) -> int:
        """Records in the data if each is one non-blank line (checked against COPY's count)."""
        unterminated = 1 if self.last and not self.last.endswith(b"\n") else 0
        return self.lines + unterminated

    async def drain(self) -> None:
        """Spool whatever the aborted COPY did not read."""
        async for chunk in self.stream:
            self.spool.write(chunk)


async def _in_thread(rows: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Run a CPU-bound generator off the event loop, one buffer at a time."""
    done = object()
    while True:
        item = await asyncio.to_thread(next, rows, done)
        if item is done:
            return
        assert isinstance(item, bytes)
        yield item


@dataclass
class Counts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    by_code: dict[str, int] = field(default_factory=dict)
    units: int = 0  # of the inserted orders
    # Orders only: the summarizer that sums the inserted orders, if one does.
    summarizer: summarizers.Summarizer | None = None


async def _judge(
    conn: Any,
    kind: UploadKind,
    on_conflict: OnConflict,
    header: parsing.Header,
    rows_total: int,
    staged: str,
    fast: bool,
    clock: _Clock,
    summarizer: summarizers.Summarizer | None,
) -> Counts:
    """Judge every row; orders are also loaded here, in the same pass (load_orders)."""
    update = on_conflict is OnConflict.UPDATE
    counts = Counts()
    await conn.execute(queries.CREATE_CHECKED[kind])
    if kind is UploadKind.ORDERS:
        rows, counts.summarizer = await _judge_and_load_orders(
            conn, header, staged, fast, update, clock, summarizer
        )
    else:
        await conn.execute(queries.create_typed(kind))
        await conn.execute(queries.type_rows(kind), header.lines, len(header.columns))
        clock.lap("type")
        low, high = await conn.fetchrow(queries.PRODUCTS_ID_RANGE)
        check_stored = await _stored_in_range(conn, kind, low, high)
        if check_stored:
            await conn.execute(queries.analyze("typed"))
        await conn.execute(queries.classify(kind, update=update, check_stored=check_stored))
        clock.lap("classify")
        rows = await conn.fetch(queries.COUNT_ACTIONS)
    for action, code, n, *units in rows:
        if action == "reject":
            counts.rejected += n
            counts.by_code[code] = n
        else:
            setattr(counts, {"insert": "inserted", "update": "updated"}.get(action, action), n)
        if action == "insert" and units:
            counts.units = units[0]
    assert counts.inserted + counts.updated + counts.unchanged + counts.rejected == rows_total
    return counts


async def _judge_and_load_orders(
    conn: Any,
    header: parsing.Header,
    staged: str,
    fast: bool,
    update: bool,
    clock: _Clock,
    summarizer: summarizers.Summarizer | None,
) -> tuple[list[Any], summarizers.Summarizer | None]:
    """Judge and load the orders; also the summarizer that sums them, if one was started
    (only for new orders, when no stored id is in the file's range)."""
    if fast:  # typed straight from the natively parsed staging table
        args = [header.lines]
    else:
        await conn.execute(queries.create_typed(UploadKind.ORDERS))
        await conn.execute(queries.type_rows(UploadKind.ORDERS), header.lines, len(header.columns))
        clock.lap("type")
        args = []
    # The products the rows reference, locked as the foreign key's trigger would lock them.
    await conn.fetchval(queries.LOCK_REFERENCED_PRODUCTS[fast])
    low, high, unique = await conn.fetchrow(queries.ORDERS_ID_RANGE[fast])
    check_stored = await _stored_in_range(conn, UploadKind.ORDERS, low, high)
    if check_stored:
        await conn.execute(queries.analyze(staged if fast else "typed"))
        summarizer = None
    elif summarizer is not None:
        # It sums the new orders on its own connection meanwhile.
        summarizer.start(first_occurrences=not unique)
    await conn.execute(queries.CREATE_ORDER_DELTAS)
    by_set = await conn.fetchval(queries.CAN_CHECK_KEYS_BY_SET)
    if by_set:
        # Every order inserted was checked against `products` in the same statement's
        # join, and the products it references are locked: the per-row trigger would
        # only repeat that check, a million times. The constraint stays in force for
        # every other writer (and for this upload's updates, which run after).
        await conn.execute(queries.SKIP_KEY_TRIGGERS)
    statement = queries.load_orders(
        update=update,
        check_stored=check_stored,
        fast=fast,
        assume_unique=unique and not check_stored,  # no id twice: no sort to find one
        sums=summarizer is None,
    )
    rows: list[Any] = await conn.fetch(statement, *args)
    if by_set:
        await conn.execute(queries.RESTORE_KEY_TRIGGERS)
    clock.lap("judge+insert")
    return rows, summarizer


async def _stored_in_range(conn: Any, kind: UploadKind, low: Any, high: Any) -> bool:
    """Whether any stored row has an id within the file's: if none, no lookup is needed."""
    if low is None:
        return False
    return bool(await conn.fetchval(queries.STORED_IN_RANGE[kind], low, high))


async def _merge(
    conn: Any,
    upload_id: int,
    kind: UploadKind,
    header: parsing.Header,
    counts: Counts,
    fast: bool,
    clock: _Clock,
) -> None:
    """Quarantine the rejects, write what `_judge` left to write, keep the rollups exact."""
    if counts.rejected:
        await conn.execute(queries.insert_rejects(kind, header.order, fast=fast), upload_id)
    if kind is UploadKind.ORDERS:
        if counts.updated:
            await conn.execute(queries.UPDATE_ORDERS)
        clock.lap("merge")
        if counts.inserted or counts.updated:
            summarizer = counts.summarizer
            if summarizer is not None and await summarizer.ship(
                conn, orders=counts.inserted, units=counts.units
            ):
                clock.lap("ship")
            else:
                if summarizer is not None:  # the insert left the sums to it: sum them here
                    sums = queries.sum_new_fast_orders(first_occurrences=True)
                    await conn.execute(sums, header.lines)
                await rollups.summarize(conn)
            await rollups.write(conn)
    else:
        insert, update = queries.MERGE[kind]
        if counts.inserted:
            await conn.execute(insert)
        if counts.updated:
            await conn.execute(update)
        clock.lap("merge")
        if counts.updated:
            await conn.execute(queries.PRICE_CHANGES)
            await rollups.apply_price_changes(conn)
    clock.lap("rollups")


async def _fail(
    engine: AsyncEngine, upload_id: int, exc: BaseException, progress: Progress
) -> None:
    """Mark the upload failed, with why, in a transaction of its own."""
    if isinstance(exc, UploadError):
        error = {"code": exc.code, "message": exc.message}
        log.info("upload %s failed: %s", upload_id, exc.code)
    elif isinstance(exc, asyncio.CancelledError):
        error = {"code": "cancelled", "message": "The upload was interrupted."}
        log.warning("upload %s cancelled", upload_id)
    else:
        if not isinstance(exc, AppError):
            log.error("upload %s failed: %s", upload_id, type(exc).__name__, exc_info=exc)
        error = {"code": "failed", "message": "The upload failed; nothing of it was loaded."}
    try:
        await _apart(
            engine, queries.MARK_FAILED, upload_id, json.dumps(error), progress.bytes_received
        )
    except Exception as db_exc:  # the database may be the thing that failed
        log.warning("upload %s: could not be marked failed (%s)", upload_id, db_exc)


async def _apart(engine: AsyncEngine, statement: str, *args: Any) -> None:
    """Run one statement in a transaction of its own, beside the upload's."""
    async with engine.begin() as sa_conn:
        conn = await driver_connection(sa_conn)
        await conn.execute(statement, *args)
