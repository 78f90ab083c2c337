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
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import driver_connection
from app.exports import feeds

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


def _encode(feed: feeds.FeedName, inbox: _Inbox, outbox: _Outbox, counted: list[int]) -> None:
    """CSV from `inbox` to Parquet into `outbox`, in row groups of ROW_GROUP_ROWS."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    target = feeds.schema(feed)
    stamps = set(feeds.timestamp_columns(feed))
    # Timestamps arrive as microseconds since the epoch (int64), cast after parsing.
    read_types = {f.name: (pa.int64() if f.name in stamps else f.type) for f in target}
    writer = pq.ParquetWriter(outbox, target, compression="zstd")
    pending: list[pa.RecordBatch] = []
    pending_rows = 0

    def flush(table: pa.Table) -> None:
        writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        counted[0] += table.num_rows

    try:
        reader = pacsv.open_csv(
            inbox,
            read_options=pacsv.ReadOptions(
                column_names=target.names, block_size=CSV_BLOCK_BYTES, use_threads=False
            ),
            # Only text can hold a line break; without text the reader splits blocks freely.
            parse_options=pacsv.ParseOptions(
                newlines_in_values=any(pa.types.is_string(f.type) for f in target)
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=read_types,
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
        for batch in reader:
            pending.append(_typed(batch, target, stamps))
            pending_rows += batch.num_rows
            if pending_rows >= ROW_GROUP_ROWS:
                table = pa.Table.from_batches(pending, schema=target)
                whole = (table.num_rows // ROW_GROUP_ROWS) * ROW_GROUP_ROWS
                flush(table.slice(0, whole))
                rest = table.slice(whole)
                pending, pending_rows = rest.to_batches(), rest.num_rows
        if pending_rows:
            flush(pa.Table.from_batches(pending, schema=target))
    except pa.ArrowInvalid as exc:
        # An empty COPY is an empty feed: the file is written with its schema alone.
        if "Empty CSV file" not in str(exc):
            raise
    finally:
        writer.close()
    outbox.flush_out()


def _typed(batch: pa.RecordBatch, target: pa.Schema, stamps: set[str]) -> pa.RecordBatch:
    if not stamps:
        return batch
    columns = [
        batch.column(i).cast(f.type) if f.name in stamps else batch.column(i)
        for i, f in enumerate(target)
    ]
    return batch.__class__.from_arrays(columns, schema=target)


async def stream(
    engine: AsyncEngine,
    feed: feeds.FeedName,
    query: feeds.Query,
    done: Callable[[int], Awaitable[None]] | None = None,
) -> AsyncIterator[bytes]:
    """The feed's rows as one Parquet file, streamed. Nothing comes out before the COPY's
    connection is had (see formats.CsvResponse); `done(rows)` is awaited at the end."""
    loop = asyncio.get_running_loop()
    stop = threading.Event()  # the answer is abandoned, or one side failed
    inbox = _Inbox(stop)
    out: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
    room = threading.Semaphore(QUEUE_CHUNKS)
    counted = [0]

    def deliver(data: bytes) -> None:
        while not room.acquire(timeout=0.2):
            if stop.is_set():
                raise _Cancelled
        loop.call_soon_threadsafe(out.put_nowait, data)

    def work() -> None:
        try:
            _encode(feed, inbox, _Outbox(deliver), counted)
            loop.call_soon_threadsafe(out.put_nowait, _DONE)
        except BaseException as exc:  # handed to the response, which raises it
            stop.set()
            loop.call_soon_threadsafe(out.put_nowait, exc)

    def hand_in(chunk: bytes | None) -> None:
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                inbox.chunks.put(chunk, timeout=0.2)
                return

    async def put(data: bytes | bytearray | memoryview) -> None:
        chunk = bytes(data)
        try:
            inbox.chunks.put_nowait(chunk)
        except queue.Full:
            await asyncio.to_thread(hand_in, chunk)
        if stop.is_set():
            raise _Cancelled

    worker = threading.Thread(target=work, name=f"parquet-{feed.value}", daemon=True)

    async def produce() -> None:
        try:
            async with engine.connect() as sa_conn:
                conn = await driver_connection(sa_conn)
                worker.start()
                await conn.copy_from_query(query.sql, *query.args, output=put, format="csv")
            await asyncio.to_thread(hand_in, _DONE)
        except BaseException as exc:
            stop.set()
            out.put_nowait(exc)
            raise

    task = asyncio.create_task(produce())
    try:
        while True:
            item = await out.get()
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
            room.release()
            yield item
        await task
        if done is not None:
            await done(counted[0])
    finally:
        stop.set()
        if not task.done():
            task.cancel()
        with contextlib.suppress(BaseException):
            await task
