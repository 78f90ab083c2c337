"""How an upload ends, beyond its load: what its rejected rows make of it (a warning in
the report when half or more were rejected, the whole upload failed past
`max_rejected_share`), and a failed upload marked so, with why.

Rows about the upload that must outlive its transaction (the failed mark, the progress
written while it runs) are written by `in_own_transaction`, on a connection of their own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import driver_connection
from app.errors import AppError, database_gone
from app.uploads.errors import TooManyRejects, UploadError
from app.uploads.plan import Counts, UploadRun
from app.uploads.schemas import WARN_REJECTED_SHARE
from app.uploads.sql import bookkeeping

# The upload's own logger: every line of an upload's story under one name.
log = logging.getLogger("app.uploads.service")

# What a reject code most likely means when it rejected most of a file.
REJECT_HINTS = {
    "invalid_date": "created_date must be a date YYYY-MM-DD or an ISO 8601 date-time"
    " (2024-11-06T14:03:00-03:00); dates written in another order need ?date_format="
    " (e.g. %d/%m/%Y)",
    "invalid_integer": "ids, product ids and quantities must be whole numbers; for text"
    " ids (SKU codes, hex digests, UUIDs) upload with ?ids=text",
    "unknown_product": "the orders name products that are not stored: upload the products"
    " file first",
    "wrong_field_count": "rows have more or fewer fields than the header: check the"
    " delimiter (?delimiter=) and commas inside unquoted fields",
    "invalid_decimal": "prices must be plain decimals (179.34, or 179,34 where the"
    " delimiter is not a comma), without thousands separators",
    "conflict": "these ids are stored with other values: ?on_conflict=update replaces them",
    "duplicate_in_file": "ids repeat within the file: each row needs an id of its own",
    "missing_value": "required fields are empty",
}


def _top_codes(counts: Counts) -> list[tuple[str, int]]:
    return sorted(counts.by_code.items(), key=lambda item: (-item[1], item[0]))


def rejection_warnings(counts: Counts) -> list[str]:
    """A warning when half or more of the rows were rejected: how many, the most common
    reason and what it most likely means."""
    total, rejected = counts.total, counts.rejected
    if not total or rejected / total < WARN_REJECTED_SHARE:
        return []
    code, rows = _top_codes(counts)[0]
    how_many = (
        f"Every row was rejected ({rejected:,})"
        if rejected == total
        else f"{rejected / total:.0%} of the rows were rejected ({rejected:,} of {total:,})"
    )
    hint = REJECT_HINTS.get(code)
    return [f"{how_many}, most as {code} ({rows:,}){f': {hint}' if hint else ''}."]


def hold_rejects(counts: Counts, max_share: float) -> None:
    """Fail the upload whole when more of its rows were rejected than it allows."""
    total, rejected = counts.total, counts.rejected
    if not total or rejected / total <= max_share:
        return
    top = _top_codes(counts)[:3]
    hint = REJECT_HINTS.get(top[0][0])
    raise TooManyRejects(
        f"{rejected:,} of {total:,} rows were rejected ({rejected / total:.1%}), more than"
        f" max_rejected_share={max_share:g} allows; nothing was loaded."
        + (f" Most as {top[0][0]}: {hint}." if hint else ""),
        details={
            "rows_total": total,
            "rows_rejected": rejected,
            "rejected_share": round(rejected / total, 6),
            "max_rejected_share": max_share,
            "top_codes": [{"code": code, "rows": rows} for code, rows in top],
        },
    )


async def mark_failed(run: UploadRun, exc: BaseException) -> None:
    """Mark the upload failed, with why, in a transaction of its own."""
    upload_id = run.upload_id
    if isinstance(exc, UploadError):
        error = {"code": exc.code, "message": exc.message}
        if isinstance(exc, TooManyRejects):
            error["details"] = exc.details
        log.info("upload %s failed: %s", upload_id, exc.code)
    elif isinstance(exc, asyncio.CancelledError):
        error = {"code": "cancelled", "message": "The upload was interrupted."}
        log.warning("upload %s cancelled", upload_id)
    elif database_gone(exc):
        error = {
            "code": "database_unavailable",
            "message": "The database connection was lost; nothing of the upload was loaded.",
        }
        log.warning("upload %s failed: database unavailable (%s)", upload_id, type(exc).__name__)
    else:
        if not isinstance(exc, AppError):
            log.error("upload %s failed: %s", upload_id, type(exc).__name__, exc_info=exc)
        error = {"code": "failed", "message": "The upload failed; nothing of it was loaded."}
    started = time.perf_counter()
    try:
        async with asyncio.timeout(5):
            await in_own_transaction(
                run.engine,
                bookkeeping.MARK_FAILED,
                upload_id,
                json.dumps(error),
                run.progress.bytes_received,
                json.dumps(run.dialect.report()) if run.dialect else None,
            )
    except Exception as db_exc:  # the database may be the thing that failed
        log.warning(
            "upload %s: could not be marked failed after %.1fs (%s); readers will sweep it",
            upload_id,
            time.perf_counter() - started,
            type(db_exc).__name__,
        )


async def in_own_transaction(engine: AsyncEngine, statement: str, *args: Any) -> None:
    """Run one statement in a transaction of its own, beside the upload's."""
    async with engine.begin() as sa_conn:
        conn = await driver_connection(sa_conn)
        await conn.execute(statement, *args)
