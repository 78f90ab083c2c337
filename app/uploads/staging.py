"""The file's bytes into the staging tables, by the fast path when COPY can read them.

- fast: the bytes go to `COPY … (FORMAT csv)` untouched: PostgreSQL parses the CSV
  (quotes, doubled quotes, CRLF or CR line ends) and, for orders, the integers. Taken
  when the header is exactly the required columns and the bytes allow it
  (`FastBytes`). A record is one line, so its line number is its ordinal plus the
  header's lines, checked against the line breaks counted on the way; products whose
  quoted names hold line breaks are numbered by those breaks
  (`sql.staging.number_lines`). Any COPY error (a value that is not an integer, a row of
  the wrong width, a blank line, mixed line ends), a byte the path does not take, or
  counts that do not agree roll back a savepoint and the file takes the careful path.
- careful: Python's csv module parses the spooled file (flat memory: a temporary file),
  in a thread, as it grows: the rest of the request is spooled while the rows before it
  are parsed and COPYed (`line, bad_count, raw, fields…`, as text). Rows of the wrong
  width and files with extra columns keep all their fields for the rejects.

Both read UTF-8 text in the plan's delimiter (uploads/sources.py made it so). Invalid
UTF-8 is `undecodable` on both paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import re
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, replace
from functools import cache
from typing import IO, Any, Protocol

import asyncpg

from app.db import copy_in, tag_rows
from app.uploads import parsing
from app.uploads.errors import Undecodable
from app.uploads.models import UploadKind
from app.uploads.plan import Plan, StagingPath, UploadRun
from app.uploads.sql import staging

log = logging.getLogger(__name__)

_UNDECODABLE = (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError)

# Orders: digits, signs, separators, both quotes and spaces, and what an ISO date-time
# adds (`T`, `Z`, `:`, a decimal point: issue 27); anything else (another letter) cannot
# be a valid integer or date, and the careful path says why. A letter or a point in an
# integer field fails COPY's own typing, and the file takes the careful path then.
ORDER_BYTES = b"0123456789-+'\" \t\r\nTtZz:."


class _Fallback(Exception):
    """The fast path cannot take this file; parse it carefully instead."""


@dataclass(frozen=True)
class _Patterns:
    """The fast path's checks for one delimiter."""

    order_bytes: bytes
    # Orders on the fast path keep their integers as COPY typed them, so a field may not
    # start with a sign, a space or a leading zero (nor end in a space): its text is then
    # exactly the typed value's, and rejects show the fields as received. Found by a
    # byte translation and substring searches (a regex over every field boundary cost
    # ~1 s per 25 MB, more than COPY's own parse): quotes deleted, the delimiter and
    # line ends become LF, signs and blanks `+`, `0` stays, other digits become `1`; then
    # `LF +` is a field that starts with a sign or a blank, `+ LF` one that ends with
    # one (or with a sign: not an integer anyway), `LF 0 digit` a leading zero.
    classes: bytes
    # Where PostgreSQL's CSV dialect and Python's agree: each field either quoted whole
    # (RFC 4180: inner quotes doubled; delimiters and line breaks allowed inside) or free
    # of quotes. A quote inside an unquoted field (`=HYPERLINK("x")`) is literal to
    # Python, and opens a quoted section to PostgreSQL: such a file takes the careful path.
    records: re.Pattern[bytes]
    last_record: re.Pattern[bytes]


@cache
def _patterns(delimiter: str) -> _Patterns:
    d = re.escape(delimiter.encode())
    field = rb'(?:"[^"]*(?:""[^"]*)*"|[^"' + d + rb"\r\n]*)"
    return _Patterns(
        order_bytes=ORDER_BYTES + delimiter.encode(),
        classes=_classes(delimiter),
        records=re.compile(rb"(?:" + field + rb"(?:" + d + field + rb")*(?:\r\n|\n|\r))*+"),
        last_record=re.compile(field + rb"(?:" + d + field + rb")*"),
    )


def _classes(delimiter: str) -> bytes:
    """The translation table of `_Patterns.classes` (the delimiter first: a tab may be it)."""
    table = bytearray(bytes.maketrans(b"+- \t123456789", b"++++111111111"))
    for separator in (delimiter.encode(), b"\r", b"\n"):
        table[separator[0]] = ord("\n")
    return bytes(table)


_LEADING_ZERO = re.compile(rb"\n0[01]")
FIELD_START = b"\n"  # as classes see the start of the data: a field starts there

MAX_OPEN_RECORD = 1 << 20  # bytes of one record held while its quotes are checked


class FastBytes:
    """Whether bytes, chunk after chunk, can go to COPY as they are; counts line breaks."""

    def __init__(self, kind: UploadKind, delimiter: str = ",") -> None:
        self.kind = kind
        self.patterns = _patterns(delimiter)
        self.breaks = 0
        self.last = b""  # the last byte seen
        self.tail = FIELD_START  # orders: the last classes seen (a pattern spans 3)
        self.open = b""  # the start of the record not yet ended
        self.quoted = False  # whether a quote was seen

    def take(self, chunk: bytes) -> bool:
        if not chunk:
            return True
        if self.kind is UploadKind.ORDERS:
            if chunk.translate(None, self.patterns.order_bytes):
                return False
            classes = self.tail + chunk.translate(self.patterns.classes, b'"')
            if (
                b"\n+" in classes
                or b"+\n" in classes
                or (b"\n0" in classes and _LEADING_ZERO.search(classes))
            ):
                return False
            self.tail = classes[-2:]
        elif b"\\" in chunk:
            # A line of `\.` ends a COPY before PostgreSQL 18; rare enough in product
            # files to leave to the careful path.
            return False
        data = self.open + chunk
        if self.quoted or b'"' in chunk:
            self.quoted = True  # from here on, records end where the quotes say
            matched = self.patterns.records.match(data)
            end = matched.end() if matched else 0
        else:
            end = max(data.rfind(b"\n"), data.rfind(b"\r")) + 1
        self.open = data[end:]
        if len(self.open) > MAX_OPEN_RECORD:
            return False
        crlf = chunk.count(b"\r\n") + (1 if self.last == b"\r" and chunk[:1] == b"\n" else 0)
        self.breaks += chunk.count(b"\n") + chunk.count(b"\r") - crlf
        self.last = chunk[-1:]
        return True

    def finished(self) -> bool:
        """At the end of the data: whether its last record (without a line end) agrees,
        and (orders) its last field does not end in a blank."""
        if self.kind is UploadKind.ORDERS and self.tail.endswith(b"+"):
            return False
        return not self.quoted or self.patterns.last_record.fullmatch(self.open) is not None

    def lines(self) -> int:
        """Physical lines of the data (a last one without a line end counts)."""
        return self.breaks + (1 if self.last not in (b"", b"\n", b"\r") else 0)


_CAREFUL_ONLY: ContextVar[bool] = ContextVar("orderlens_careful_path_only", default=False)


@contextlib.contextmanager
def careful_path_only() -> Iterator[None]:
    """Uploads started inside this block take the careful path, whatever their bytes:
    how tests judge one file both ways. An internal hook, not a request's to ask for: it
    reaches the uploads served in this context (an in-process client's), no other."""
    token = _CAREFUL_ONLY.set(True)
    try:
        yield
    finally:
        _CAREFUL_ONLY.reset(token)


def first_path() -> StagingPath:
    """The path an upload's plan sets out on: fast (`stage` leaves it for the careful one
    when the bytes need it), or careful inside `careful_path_only`."""
    return StagingPath.CAREFUL if _CAREFUL_ONLY.get() else StagingPath.FAST


class SpoolWatcher(Protocol):
    """Told of the fast path's writes to the spool, and of their end (summarizer.py's
    `EarlyStart`)."""

    def grew(self, size: int) -> None: ...

    def finish(self) -> None: ...


async def stage(
    run: UploadRun,
    plan: Plan,
    header: parsing.Header,
    rest: bytes,
    stream: AsyncIterator[bytes],
    watcher: SpoolWatcher | None = None,
) -> tuple[Plan, int]:
    """COPY the data rows into staging; the plan with the path they took, and the records
    staged (as COPY counted them). A plan that sets out on the careful path keeps to it.
    `watcher`, if given, is told of the spool's growth while the fast path stages
    orders."""
    checker = FastBytes(plan.kind, plan.dialect.staged_delimiter)
    # Text ids are never COPY-typed integers: such orders take the careful path.
    typed = not (plan.text_ids and plan.kind is UploadKind.ORDERS)
    if plan.fast and header.exact and typed and checker.take(rest):
        try:
            async with run.conn.transaction():  # a savepoint: a failed attempt leaves nothing
                return plan, await _fast(run, plan, checker, rest, stream, watcher)
        except _UNDECODABLE:
            raise Undecodable(parsing.NOT_UTF8) from None
        except (_Fallback, asyncpg.BadCopyFileFormatError, asyncpg.DataError):
            log.debug("fast path declined; parsing the file carefully")
    else:
        run.spool.write(rest)
    careful = replace(plan, path=StagingPath.CAREFUL)
    # With what the fast path did not read.
    return careful, await _careful(run, careful, header, stream)


async def _fast(
    run: UploadRun,
    plan: Plan,
    checker: FastBytes,
    rest: bytes,
    stream: AsyncIterator[bytes],
    watcher: SpoolWatcher | None,
) -> int:
    declined = False
    if not staging.typed_orders(plan):
        watcher = None

    def spooled(data: bytes) -> None:
        run.spool.write(data)
        if watcher is not None:
            watcher.grew(len(data))

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal declined
        spooled(rest)
        run.progress.records_seen = checker.breaks
        yield rest
        async for chunk in stream:
            if not checker.take(chunk):
                run.spool.write(chunk)  # the careful path's, not the watcher's
                declined = True
                return
            spooled(chunk)
            run.progress.records_seen = checker.breaks
            yield chunk

    try:
        await run.conn.execute(staging.create(plan))
        ahead = read_ahead(chunks())
        try:
            status = await copy_in(
                run.conn,
                staging.table(plan),
                source=ahead,
                columns=staging.copy_columns(plan),
                delimiter=plan.dialect.staged_delimiter,
            )
        finally:
            await ahead.aclose()  # the stream is the careful path's after this: none in flight
    finally:
        if watcher is not None:
            watcher.finish()
    if declined or not checker.finished():
        raise _Fallback
    records = tag_rows(status)
    if records == checker.lines():
        return records  # one record a line
    if staging.typed_orders(plan):
        raise _Fallback  # a record over several lines: an integer cannot hold a break
    spanned = await run.conn.fetchval(staging.number_lines(plan), plan.header_lines)
    if spanned != checker.lines():
        raise _Fallback
    return records


async def _careful(
    run: UploadRun, plan: Plan, header: parsing.Header, stream: AsyncIterator[bytes]
) -> int:
    """Parse the spool from its start while the rest of the stream is appended to it."""
    run.spool.flush()
    growing = GrowingSpool(run.spool)

    async def pump() -> None:
        try:
            async for chunk in stream:
                run.spool.write(chunk)
                run.spool.flush()
                growing.grew()
        finally:
            growing.finish()

    def seen(records: int) -> None:
        run.progress.records_seen = records

    rows = parsing.careful_rows(io.BufferedReader(growing, SPOOL_READ_BYTES), header, plan, seen)
    await run.conn.execute(staging.create(plan))
    pumping = asyncio.create_task(pump())
    try:
        status = await copy_in(
            run.conn,
            staging.table(plan),
            source=off_loop(rows),
            columns=staging.copy_columns(plan),
        )
        await pumping  # done already: the parser read to the end
        return tag_rows(status)
    except _UNDECODABLE:
        raise Undecodable(parsing.NOT_UTF8) from None
    finally:
        if not pumping.done():
            pumping.cancel()
            with contextlib.suppress(BaseException):
                await pumping
        growing.finish()


SPOOL_READ_BYTES = 1 << 20


class GrowingSpool(io.RawIOBase):
    """The spool file as the careful parser's thread reads it: from its start, by offset,
    waiting for more while the request is still arriving (the event loop appends)."""

    def __init__(self, spool: IO[bytes]) -> None:
        self._fd = spool.fileno()
        self._spool = spool
        self._offset = 0
        self._size = os.fstat(self._fd).st_size
        self._done = False
        self._changed = threading.Condition()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence != io.SEEK_SET:
            raise io.UnsupportedOperation("only absolute positions")
        self._offset = offset
        return offset

    def grew(self) -> None:
        with self._changed:
            self._size = os.fstat(self._fd).st_size
            self._changed.notify_all()

    def finish(self) -> None:
        with self._changed:
            self._size = os.fstat(self._fd).st_size
            self._done = True
            self._changed.notify_all()

    def readinto(self, buffer: Any) -> int:
        with self._changed:
            while self._offset >= self._size and not self._done:
                self._changed.wait(1.0)
            available = self._size - self._offset
        if available <= 0:
            return 0  # the end: the request is all in, and all read
        data = os.pread(self._fd, min(len(buffer), available), self._offset)
        buffer[: len(data)] = data
        self._offset += len(data)
        return len(data)


_END = object()


async def read_ahead(chunks: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
    """The chunks, the next one read while the one before is sent. asyncpg asks for a
    chunk only once the socket has taken the last one, so without this PostgreSQL's parse
    and the making of the next chunk (the request read, the fast path's checks, the spool
    written, a converted file's rows) take turns instead of overlapping. Closed early,
    it lets the chunk in flight finish (never cancelled half-way through the stream)."""
    pending: asyncio.Future[Any] = asyncio.ensure_future(anext(chunks, _END))
    try:
        while (item := await pending) is not _END:
            pending = asyncio.ensure_future(anext(chunks, _END))
            yield item
    finally:
        if not pending.done():
            await asyncio.wait([pending])
        if not pending.cancelled():
            pending.exception()  # retrieved: the caller is leaving for its own reason


async def off_loop(rows: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Run a CPU-bound generator off the event loop, one buffer at a time."""
    done = object()
    while True:
        item = await asyncio.to_thread(next, rows, done)
        if item is done:
            return
        assert isinstance(item, bytes)
        yield item
