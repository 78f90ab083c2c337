"""Reading uploads and their rejects."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.kit.csv import csv_line, csv_lines
from app.uploads.sql import bookkeeping, reads


async def sweep_dead(session: AsyncSession) -> None:
    await session.execute(text(reads.SWEEP_DEAD), {"base": bookkeeping.UPLOAD_LOCK_BASE})


async def get(*, session: AsyncSession, upload_id: int) -> dict[str, Any] | None:
    row = (
        (
            await session.execute(
                text(reads.GET_UPLOAD),
                {"id": upload_id},
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


async def page(
    *, session: AsyncSession, limit: int, before: int | None, kind: str | None
) -> list[dict[str, Any]]:
    """Newest first, keyset on upload_id."""
    rows = await session.execute(
        text(reads.PAGE_UPLOADS),
        {"before": before, "kind": kind, "limit": limit},
    )
    return [dict(r) for r in rows.mappings()]


async def rejects_page(
    *, session: AsyncSession, upload_id: int, limit: int, after: int | None
) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(reads.PAGE_REJECTS),
        {"id": upload_id, "after": after or 0, "limit": limit},
    )
    return [dict(r) for r in rows.mappings()]


async def widest_reject(*, session: AsyncSession, upload_id: int) -> int:
    """The most fields any reject of the upload has (rows may have too many)."""
    value = await session.scalar(
        text(reads.WIDEST_REJECT),
        {"id": upload_id},
    )
    return int(value or 0)


async def stream_rejects_csv(
    *, engine: AsyncEngine, upload_id: int, columns: list[str], width: int
) -> AsyncIterator[bytes]:
    """Every reject as CSV, streamed from a server-side cursor (flat memory)."""
    extra = width > len(columns)
    async with engine.connect() as conn:
        yield csv_line(
            [*columns, "_row_number", "_error_code", "_error_message"]
            + (["_extra_fields"] if extra else [])
        )
        async for batch in _batches(conn, upload_id):
            yield csv_lines(
                [
                    *fields[: len(columns)],
                    *[""] * (len(columns) - len(fields)),
                    row_number,
                    code,
                    message,
                    *([json.dumps(fields[len(columns) :])] if extra else []),
                ]
                for row_number, code, message, fields in batch
            )


async def _batches(conn: AsyncConnection, upload_id: int) -> AsyncIterator[list[Any]]:
    result = await conn.stream(
        text(reads.ALL_REJECTS),
        {"id": upload_id},
    )
    async for partition in result.partitions(2000):
        yield list(partition)
