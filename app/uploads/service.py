"""One upload, end to end: stream the file into staging, settle the plan, judge every row
in SQL, then load, quarantine, fold the rollups and write the report, all in one
transaction. Either all of it commits or none of it does.

    receive ─ stage (fast: COPY parses │ careful: Python parses) ─ plan ─ check ─
    judge + load ─ rejects ─ rollups (here, or summed aside) ─ report ─ commit
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from app import logs
from app.analytics import rollups
from app.db import driver_connection
from app.errors import AppError, database_gone
from app.uploads import outcome, parsing, sources, staging
from app.uploads.dialect import Dialect, UploadOptions, decimal_for
from app.uploads.early_start import EarlyStart
from app.uploads.errors import EmptyFile, MissingColumns
from app.uploads.models import OnConflict, UploadKind
from app.uploads.multipart import FilePartReader
from app.uploads.plan import Counts, Plan, UploadLimits, UploadProgress, UploadRun
from app.uploads.rules import RULES
from app.uploads.sql import bookkeeping, checks, orders, products, rejects
from app.uploads.sql import staging as staged
from app.uploads.summarizer import Summarizer
from app.uploads.whole import load_whole

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_SECONDS = 1.0
# A failed upload reads the rest of its request before it answers (a client that sends
# the whole file before reading would otherwise miss the answer), for at most this long.
DRAIN_SECONDS = 8.0


async def ingest(
    *,
    engine: AsyncEngine,
    limits: UploadLimits,
    kind: UploadKind,
    options: UploadOptions,
    content_type: str | None,
    body: AsyncIterator[bytes],
) -> int:
    """Load one uploaded file, in the dialect `options` fix or the one detected; returns
    the upload id. File-level errors are raised as UploadError (the upload is recorded
    as failed, with the id in `details`)."""
    on_conflict = options.on_conflict
    reader = FilePartReader(content_type, max_bytes=limits.max_bytes)
    chunks = reader.read(body)
    # The part headers come before the data: after the first chunk the filename is known.
    first = await anext(chunks, b"")
    async with engine.connect() as sa_conn:
        conn = await driver_connection(sa_conn)
        upload_id = await _create_upload(conn, kind, on_conflict, reader.filename)
        logs.bind(upload_id=upload_id)  # on every record of the request from here on
        log.info("upload %s: %s %r started", upload_id, kind.value, reader.filename)
        with tempfile.TemporaryFile(prefix="orderlens-upload-") as spool:
            run = UploadRun(engine, conn, upload_id, kind, on_conflict, limits, spool)
            reporter = asyncio.create_task(_report_progress(run))
            try:
                await _load(run, _tap(first, chunks, run.progress), reporter, options)
            except BaseException as exc:
                reporter.cancel()
                if run.summarizer is not None:
                    await run.summarizer.abandon()
                if database_gone(exc):
                    await _drain(chunks)
                await outcome.mark_failed(run, exc)
                if isinstance(exc, AppError):
                    exc.details = {**(exc.details or {}), "upload_id": upload_id}
                raise
            finally:
                reporter.cancel()
                with contextlib.suppress(Exception):
                    await conn.execute(
                        bookkeeping.RELEASE_UPLOAD_LOCK, bookkeeping.UPLOAD_LOCK_BASE + upload_id
                    )
    return upload_id


async def _create_upload(
    conn: asyncpg.Connection, kind: UploadKind, on_conflict: OnConflict, filename: str | None
) -> int:
    """Record the upload as running, holding a session lock that says it is alive."""
    async with conn.transaction():
        upload_id: int = await conn.fetchval(
            bookkeeping.CREATE_UPLOAD, kind.value, filename, on_conflict.value
        )
        await conn.execute(bookkeeping.TAKE_UPLOAD_LOCK, bookkeeping.UPLOAD_LOCK_BASE + upload_id)
    return upload_id


async def _tap(
    first: bytes, rest: AsyncIterator[bytes], progress: UploadProgress
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


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    """Read what is left of the request, for a while, discarding it."""
    with contextlib.suppress(Exception):  # TimeoutError included
        async with asyncio.timeout(DRAIN_SECONDS):
            async for _ in chunks:
                pass


async def _report_progress(run: UploadRun) -> None:
    """Write bytes and records read so far to the upload's row, every second."""
    while True:
        await asyncio.sleep(PROGRESS_INTERVAL_SECONDS)
        try:
            await outcome.in_own_transaction(
                run.engine,
                bookkeeping.WRITE_PROGRESS,
                run.upload_id,
                run.progress.bytes_received,
                run.progress.records_seen,
            )
        except Exception as exc:  # progress is best effort; the load decides the outcome
            log.debug("upload %s: progress not written (%s)", run.upload_id, type(exc).__name__)


async def _load(
    run: UploadRun,
    stream: AsyncIterator[bytes],
    reporter: asyncio.Task[None],
    options: UploadOptions,
) -> None:
    conn = run.conn
    async with conn.transaction():
        # Sorts and hashes over a million staged rows stay in memory, for this
        # transaction only.
        await conn.execute(bookkeeping.SET_LOCAL_WORK_MEM, run.limits.work_mem)
        await conn.execute(bookkeeping.SET_LOCAL_NAME, f"orderlens upload {run.upload_id}")
        await conn.execute(bookkeeping.SET_LOCAL_UPLOAD, str(run.upload_id))
        await conn.execute(bookkeeping.SET_LOCAL_NO_IDLE_TIMEOUT)
        source = await sources.open_source(stream, options, run.limits.tabular)
        try:
            plan, rows_total = await _load_source(run, source, reporter, options)
        finally:
            await source.close()  # a workbook's or Parquet file's reading process stops
    summarizer = run.summarizer
    log.info(
        "upload %s: %s rows by the %s path%s%s; %s%s",
        run.upload_id,
        rows_total,
        plan.path.value,
        ", loaded whole" if run.counts.whole else "",
        f", its date-times at {run.counts.offset} read by date" if run.counts.offset else "",
        run.clock,
        ""
        if summarizer is None or summarizer.seconds is None
        else f" (summarizer {summarizer.seconds:.2f}s beside, waited for {summarizer.waited:.2f}s"
        f"{', its checks taken' if summarizer.checks_taken else ''}"
        f"{f', summed ahead: {summarizer.ahead}' if summarizer.ahead else ''})",
    )


async def _load_source(
    run: UploadRun, source: sources.TextSource, reporter: asyncio.Task[None], options: UploadOptions
) -> tuple[Plan, int]:
    """Stage, judge and write the file read from `source`, in the upload's transaction;
    the plan it ran and its rows."""
    header, rest = await _read_header(run.kind, source, options)
    first = _plan_by_header(run, source, header, options)
    run.clock.lap("header")
    early = EarlyStart(run, first) if run.kind is UploadKind.ORDERS else None
    plan, rows_total = await staging.stage(run, first, header, rest, source.chunks, early)
    run.clock.lap("stage")
    if not plan.fast and run.summarizer is not None:  # it followed the fast path's spool
        await run.summarizer.abandon()
        run.summarizer = None
    if rows_total == 0:
        raise EmptyFile("The file has a header but no rows.")
    run.progress.records_seen = rows_total
    reporter.cancel()  # the row is written once more below, with the outcome

    await run.conn.execute(bookkeeping.TAKE_MERGE_LOCK, bookkeeping.MERGE_LOCK_KEY)
    run.clock.lap("wait")
    plan = await _settle(run, plan, rows_total)
    run.counts = await _judge(
        run, plan, options.effective_from or business_date(run.limits.timezone)
    )
    assert run.counts.total == rows_total
    outcome.hold_rejects(run.counts, options.max_rejected_share)
    header.warnings += outcome.rejection_warnings(run.counts)
    await _write(run, plan)
    if run.summarizer is not None:  # shipped, not needed, or failed: let it go
        await run.summarizer.close()
    await _finish(run, plan, header, rows_total, decimal_asked=options.decimal)
    return plan, rows_total


async def _read_header(
    kind: UploadKind, source: sources.TextSource, options: UploadOptions
) -> tuple[parsing.Header, bytes]:
    """The file's header, with the kind's columns found in it (MissingColumns if one is
    not), and the bytes read past it."""
    header_text, rest = await parsing.split_header(source.chunks)
    rules = RULES[kind]
    # With text ids, an orders file may leave out `id` when it has `order_id`.
    keyed_by_order = options.text_ids and kind is UploadKind.ORDERS
    header = parsing.parse_header(
        header_text,
        tuple(c for c in rules.required if not (keyed_by_order and c == "id")),
        options.delimiter if source.encoding else ",",
        options.renamed,
        rules.optional + (("id",) if keyed_by_order else ()),
    )
    if keyed_by_order and not {"id", "order_id"} & set(header.positions):
        raise MissingColumns(
            "Required columns are missing: id (or, with ids=text, order_id: the lines are"
            " then keyed by their order).",
            details={"missing": ["id"], "required": list(rules.required), "found": header.columns},
        )
    header.warnings += source.warnings
    return header, rest


def _plan_by_header(
    run: UploadRun, source: sources.TextSource, header: parsing.Header, options: UploadOptions
) -> Plan:
    """The plan as far as the header settles it (staging and the checks settle the rest),
    setting out on the fast path unless `staging.careful_path_only` is in force. The run
    keeps the dialect, for the report of a failed upload too."""
    delimiter = header.delimiter
    run.dialect = Dialect(
        format=source.format,
        encoding=source.encoding,
        delimiter=delimiter if source.encoding else None,
        decimal=decimal_for(options, delimiter),
        date_format=options.date_format,
        timezone=run.limits.timezone,
    )
    return Plan(
        kind=run.kind,
        on_conflict=run.on_conflict,
        path=staging.first_path(),
        order=header.order,
        # A header cell's line breaks count as lines in a CSV, not in a sheet.
        header_lines=(1 if run.dialect.numbered_by_records else header.lines) + source.line_offset,
        width=len(header.columns),
        dialect=run.dialect,
        text_ids=options.text_ids,
    )


async def _finish(
    run: UploadRun, plan: Plan, header: parsing.Header, rows_total: int, decimal_asked: str | None
) -> None:
    """Mark the upload succeeded, with its report, in the upload's transaction."""
    conn = run.conn
    decimal_seen = None
    if decimal_asked is None and plan.dialect.decimal == ",":
        decimal_seen = bool(await conn.fetchval(staged.decimal_commas(plan)))
    date_times = None
    if plan.kind is UploadKind.ORDERS:
        # Written with a time of day, less those refused: the date-times read as dates.
        written = int(await conn.fetchval(staged.date_times(plan)))
        column = header.positions["created_date"] + 1
        refused = await conn.fetchval(rejects.INVALID_DATE_TIMES, run.upload_id, column)
        date_times = written - int(refused)
    finished = bookkeeping.FinishedUpload(
        upload_id=run.upload_id,
        sha256=run.progress.sha256.hexdigest(),
        columns=header.columns,
        warnings=header.warnings,
        bytes_received=run.progress.bytes_received,
        rows_total=rows_total,
        rows_inserted=run.counts.inserted,
        rows_updated=run.counts.updated,
        rows_unchanged=run.counts.unchanged,
        rows_rejected=run.counts.rejected,
        rejects_by_code=run.counts.by_code,
        dialect=plan.dialect.report(decimal_seen=decimal_seen, timestamps=date_times),
    )
    await conn.execute(bookkeeping.FINISH_UPLOAD, *finished.args())


def _parameters(plan: Plan) -> list[Any]:
    """The parameters of the statements that read `checks.rows(plan)`."""
    return [] if checks.via_typed(plan) else [plan.header_lines]


async def _settle(run: UploadRun, plan: Plan, rows_total: int) -> Plan:
    """Check the staged rows, and settle the plan on what they proved; start the
    summarizer if the plan says so (or let go of the one started while staging)."""
    conn = run.conn
    if checks.via_typed(plan):
        await conn.execute(checks.create_typed(plan))
        await conn.execute(checks.fill_typed(plan), plan.header_lines, plan.width)
        if plan.text_ids:
            for statement in checks.resolve_codes(plan):
                await conn.execute(statement)
        run.clock.lap("check")
    low, high, unique = await conn.fetchrow(checks.id_range(plan))
    stored = low is not None and bool(
        await conn.fetchval(bookkeeping.STORED_IN_RANGE[plan.kind], low, high)
    )
    is_orders = plan.kind is UploadKind.ORDERS
    plan = replace(
        plan,
        stored_in_range=stored,
        unique_ids=bool(unique),
        keys_by_set=is_orders and bool(await conn.fetchval(bookkeeping.CAN_CHECK_KEYS_BY_SET)),
        sum_aside=(
            is_orders
            and plan.fast
            and not stored
            and rows_total >= run.limits.summarizer_min_rows
            and (run.summarizer is not None or Summarizer.can_start(run.engine))
        ),
    )
    if stored:
        await conn.execute(checks.analyze(plan))
    if plan.sum_aside:
        if run.summarizer is None:
            run.summarizer = Summarizer.on_the_whole_spool(run, plan)
        run.summarizer.go(plan, rows_total)
    elif run.summarizer is not None:  # started while staging, and not needed after all
        run.summarizer.let_go()
        run.summarizer = None
    return plan


def business_date(timezone: str) -> date:
    """Today in the business's time zone (BUSINESS_TIMEZONE)."""
    return datetime.now(ZoneInfo(timezone)).date()


async def _judge(run: UploadRun, plan: Plan, effective_from: date) -> Counts:
    """Judge every row; orders are loaded here too, in the same statement. A products
    row without an `effective_from` of its own takes effect from `effective_from`."""
    conn, counts = run.conn, Counts()
    if plan.kind is UploadKind.PRODUCTS:
        await conn.execute(products.CREATE_CHECKED)
        await conn.execute(products.classify(plan), effective_from)
        for action, code, n in await conn.fetch(products.COUNT_ACTIONS):
            counts.add(action, code, n)
        run.clock.lap("judge")
        return counts
    locked, referenced = await conn.fetchrow(orders.lock_referenced_products(plan))
    await conn.execute(orders.CREATE_CHECKED)
    await rollups.open_deltas(conn)
    if plan.keys_by_set:
        # Every order inserted was checked against `products` in the same statement's
        # join (or, loaded whole, by the lock's counts), and the products it references
        # are locked: the per-row trigger would only repeat that check, a million times.
        # The constraint stays in force for every other writer (and for this upload's
        # updates, which run after).
        await conn.execute(bookkeeping.SKIP_KEY_TRIGGERS)
    # When every product named is stored, a row of such a plan that passes its own checks
    # is an insert.
    whole = orders.may_load_whole(plan) and locked == referenced
    # A summarizer beside checks the rows and prices while the upload checks the dates.
    summarizer = run.summarizer if plan.sum_aside else None
    if summarizer is not None and not whole:
        summarizer.dates_checked(None)  # it checks its own, now, not after the load
    if whole and (inserted := await load_whole(conn, plan, summarizer)) is not None:
        counts.whole, counts.offset = True, inserted[2]
        counts.add("insert", None, *inserted[:2])
    else:
        for action, code, n, units in await conn.fetch(orders.load(plan), *_parameters(plan)):
            counts.add(action, code, n, units)
    if plan.keys_by_set:
        await conn.execute(bookkeeping.RESTORE_KEY_TRIGGERS)
    run.clock.lap("judge+insert")
    return counts


async def _write(run: UploadRun, plan: Plan) -> None:
    """Quarantine the rejects, write what the judging left to write, keep the rollups
    exact."""
    conn, counts = run.conn, run.counts
    if counts.rejected:
        await conn.execute(rejects.insert(plan), run.upload_id)
    if plan.kind is UploadKind.PRODUCTS:
        if counts.inserted:
            await conn.execute(products.INSERT)
        if counts.updated:
            await conn.execute(products.UPDATE_NAMES)
            await conn.execute(products.SAVE_OLD_PRICES)
        if counts.inserted or counts.updated:
            for statement in products.SET_PRICES:
                await conn.execute(statement)
        run.clock.lap("merge")
        if counts.updated:
            await rollups.open_deltas(conn)
            await conn.execute(products.PRICE_CHANGE_DELTAS)
            await rollups.fold(conn)
            run.clock.lap("rollups")
        return
    if counts.updated:
        await conn.execute(orders.UPDATE_STORED)
    run.clock.lap("merge")
    if not (counts.inserted or counts.updated):
        return
    summarizer = run.summarizer
    if summarizer is not None and await summarizer.ship(
        conn, orders=counts.inserted, units=counts.units
    ):
        run.clock.lap("ship")
        await rollups.write(conn)
    else:
        if plan.sum_aside:  # the insert left the sums to the summarizer: sum them here
            await conn.execute(orders.sum_new(plan), *_parameters(plan))
        await rollups.fold(conn)
    run.clock.lap("rollups")
