"""Parquet streamed from COPY: PostgreSQL writes CSV, pyarrow's C++ reader types it
against the feed's schema, and a ParquetWriter writes row groups of ROW_GROUP_ROWS as
they fill, into a bounded queue the response reads. Memory holds one row group and a
few chunks on each side, whatever the size of the feed.

The work is split over two threads of control: the event loop runs the COPY (asyncpg)
and hands its chunks to a worker thread through a bounded queue; the thread parses and
encodes (pyarrow releases the GIL) and hands the file's bytes back through another.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import queue
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import reading_connection, stop_reading
from app.exports import feeds, merge

if TYPE_CHECKING:
    import pyarrow as pa

PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"
ROW_GROUP_ROWS = 100_000
QUEUE_CHUNKS = 8  # COPY chunks (~64 KiB) or file chunks (~1 MiB) in flight each way
OUT_CHUNK_BYTES = 1 << 20
CSV_BLOCK_BYTES = 1 << 20
_DONE = None


class _Inbox(io.RawIOBase):
    """The COPY's bytes, as a file pyarrow reads in the worker thread."""

    def __init__(self, stop: threading.Event) -> None:
        self.chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUE_CHUNKS)
        self._stop = stop
        self._view = memoryview(b"")
        self._ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._view and not self._ended:
            try:
                chunk = self.chunks.get(timeout=0.2)
            except queue.Empty:
                if self._stop.is_set():
                    raise _Cancelled from None
                continue
            if chunk is _DONE:
                self._ended = True
            else:
                self._view = memoryview(chunk)
        n = min(len(buffer), len(self._view))
        buffer[:n] = self._view[:n]
        self._view = self._view[n:]
        return n


class _Outbox(io.RawIOBase):
    """Where the ParquetWriter writes: bytes gathered into ~1 MiB chunks for the loop."""

    def __init__(self, deliver: Callable[[bytes], None]) -> None:
        self._deliver = deliver
        self._buffer = bytearray()
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        n = len(data)
        self._buffer += data
        self._position += n
        if len(self._buffer) >= OUT_CHUNK_BYTES:
            self.flush_out()
        return n

    def tell(self) -> int:
        return self._position

    def flush_out(self) -> None:
        if self._buffer:
            self._deliver(bytes(self._buffer))
            self._buffer = bytearray()


class _Cancelled(Exception):
    """The answer was abandoned: the worker stops."""


def _encode(
    feed: feeds.FeedName,
    query: feeds.Query,
    lookups: dict[str, bytes],
    inbox: _Inbox,
    outbox: _Outbox,
    counted: list[int],
) -> None:
    """CSV from `inbox` to Parquet into `outbox`, in row groups of ROW_GROUP_ROWS, each
    batch completed from `lookups` (their CSV, copied first) by `merge`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    target = feeds.schema(feed)
    finish = merge.finisher(
        feed, {name: _table(lookups.pop(name), source.columns) for name, source in query.lookups}
    )
    writer = pq.ParquetWriter(outbox, target, compression="zstd", **_encodings(feed, target))
    pending: list[pa.RecordBatch] = []
    pending_rows = 0

    def flush(table: pa.Table) -> None:
        writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        counted[0] += table.num_rows

    try:
        for batch in _batches(inbox, query.rows.columns):
            pending.append(finish(batch).cast(target))  # (keys not null: checked here)
            pending_rows += batch.num_rows
            if pending_rows >= ROW_GROUP_ROWS:
                table = pa.Table.from_batches(pending, schema=target)
                whole = (table.num_rows // ROW_GROUP_ROWS) * ROW_GROUP_ROWS
                flush(table.slice(0, whole))
                rest = table.slice(whole)
                pending, pending_rows = rest.to_batches(), rest.num_rows
        if pending_rows:
            flush(pa.Table.from_batches(pending, schema=target))
    finally:
        writer.close()
    outbox.flush_out()


def _encodings(feed: feeds.FeedName, target: pa.Schema) -> dict[str, Any]:
    """A feed's integer key (an id per row, mostly ascending) delta-packed rather than
    dictionary-encoded: a dictionary of unique values is pure cost (a quarter of the
    writing time of order_full_information, and a third of its size)."""
    import pyarrow as pa

    key = feeds.KEYS[feed]
    if len(key) != 1 or not pa.types.is_integer(target.field(key[0]).type):
        return {}
    return {
        "use_dictionary": [name for name in target.names if name != key[0]],
        "column_encoding": {key[0]: "DELTA_BINARY_PACKED"},
    }


def _batches(source: io.RawIOBase | io.BytesIO, columns: feeds.Columns) -> Iterator[pa.RecordBatch]:
    """COPY's CSV typed as `columns` by pyarrow's C++ reader, a block at a time; nothing
    for an empty COPY."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    schema = feeds.arrow_schema(columns)
    stamps = {name for name, kind in columns if kind == "timestamp"}
    # Timestamps arrive as microseconds since the epoch (int64), cast after parsing.
    read_types = {f.name: (pa.int64() if f.name in stamps else f.type) for f in schema}
    try:
        reader = pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(
                column_names=schema.names, block_size=CSV_BLOCK_BYTES, use_threads=False
            ),
            # Only text can hold a line break; without text the reader splits blocks freely.
            parse_options=pacsv.ParseOptions(
                newlines_in_values=any(pa.types.is_string(f.type) for f in schema)
            ),
            # COPY writes NULL as an unquoted empty field and nothing else: a name or a
            # code such as NA or NULL (pyarrow's default null spellings) is text.
            convert_options=pacsv.ConvertOptions(
                column_types=read_types,
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" in str(exc):
            return
        raise
    for batch in reader:
        if stamps:
            batch = pa.RecordBatch.from_arrays(
                [
                    batch.column(i).cast(f.type) if f.name in stamps else batch.column(i)
                    for i, f in enumerate(schema)
                ],
                schema=schema,
            )
        yield batch


def _table(csv: bytes, columns: feeds.Columns) -> pa.Table:
    """A lookup's CSV as a table of `columns`."""
    import pyarrow as pa

    return pa.Table.from_batches(
        list(_batches(io.BytesIO(csv), columns)), schema=feeds.arrow_schema(columns)
    )


async def stream(
    engine: AsyncEngine,
    feed: feeds.FeedName,
    query: feeds.Query,
    done: Callable[[int], Awaitable[None]] | None = None,
) -> AsyncIterator[bytes]:
    """The feed's rows as one Parquet file, streamed. Nothing comes out before the COPY's
    connection is had (see kit.csv.CsvResponse); `done(rows)` is awaited at the end. The
    lookups and the rows are copied in one read-only repeatable-read transaction: one
    snapshot, as one statement would see."""
    transfer = _Transfer(feed, query)
    task = asyncio.create_task(transfer.produce(engine))
    try:
        while True:
            item = await transfer.out.get()
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
            transfer.room.release()
            yield item
        await task
        if done is not None:
            await done(transfer.counted[0])
    finally:
        transfer.stop.set()
        await stop_reading(task, transfer.reading)


class _Transfer:
    """One stream's two sides and what they share. The event loop runs the COPY
    (`produce`) and hands its chunks to the worker thread (`put`, `hand_in`); the thread
    encodes (`work`) and hands the file's chunks back (`deliver`) into `out`, `room`
    bounding how many wait there. `stop`: the answer is abandoned, or one side failed."""

    def __init__(self, feed: feeds.FeedName, query: feeds.Query) -> None:
        self.loop = asyncio.get_running_loop()
        self.stop = threading.Event()
        self.inbox = _Inbox(self.stop)
        self.out: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
        self.room = threading.Semaphore(QUEUE_CHUNKS)
        self.counted = [0]
        self.lookups: dict[str, bytes] = {}
        self.reading: asyncpg.Connection | None = None  # the COPY's connection, once had
        self._feed, self._query = feed, query
        self._worker = threading.Thread(target=self.work, name=f"parquet-{feed.value}", daemon=True)

    # --- the worker thread -------------------------------------------------------------

    def work(self) -> None:
        try:
            _encode(
                self._feed,
                self._query,
                self.lookups,
                self.inbox,
                _Outbox(self.deliver),
                self.counted,
            )
            self.loop.call_soon_threadsafe(self.out.put_nowait, _DONE)
        except BaseException as exc:  # handed to the response, which raises it
            self.stop.set()
            self.loop.call_soon_threadsafe(self.out.put_nowait, exc)

    def deliver(self, data: bytes) -> None:
        while not self.room.acquire(timeout=0.2):
            if self.stop.is_set():
                raise _Cancelled
        self.loop.call_soon_threadsafe(self.out.put_nowait, data)

    # --- the event loop -----------------------------------------------------------------

    async def produce(self, engine: AsyncEngine) -> None:
        try:
            async with reading_connection(engine) as conn:
                self.reading = conn
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    for name, source in self._query.lookups:
                        self.lookups[name] = await _copy_all(conn, source)
                    self._worker.start()
                    rows = self._query.rows
                    await conn.copy_from_query(rows.sql, *rows.args, output=self.put, format="csv")
            await asyncio.to_thread(self.hand_in, _DONE)
        except BaseException as exc:
            self.stop.set()
            self.out.put_nowait(exc)
            raise

    async def put(self, data: bytes | bytearray | memoryview) -> None:
        if self.stop.is_set():
            return  # dropped: the COPY's connection is being closed (db.stop_reading)
        chunk = bytes(data)
        try:
            self.inbox.chunks.put_nowait(chunk)
        except queue.Full:
            await asyncio.to_thread(self.hand_in, chunk)

    def hand_in(self, chunk: bytes | None) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(queue.Full):
                self.inbox.chunks.put(chunk, timeout=0.2)
                return


async def _copy_all(conn: asyncpg.Connection, source: feeds.Source) -> bytes:
    """A small COPY's CSV, whole (a lookup: one row per product or upload)."""
    parts: list[bytes] = []

    async def keep(data: bytes) -> None:
        parts.append(bytes(data))

    await conn.copy_from_query(source.sql, *source.args, output=keep, format="csv")
    return b"".join(parts)
