"""Reading a feed: check the cursor, take the next one, log the read, stream the rows."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db import driver_connection
from app.exports import feeds, parquet
from app.kit.pagination import InvalidCursor, decode_cursor, encode_cursor
from app.kit.params import Period

MAX_CURSOR_CHARS = 512  # the cursors given out are about 40


@dataclass(frozen=True)
class Read:
    """One read of a feed: the cursor it answers with, and its rows as Parquet."""

    next_cursor: str
    body: AsyncIterator[bytes]
    # Its line in the log of reads (`/syncs`), and for a reader that reports its commit
    # the token that proves the read is its own (POST /syncs/finished).
    sync_id: int
    report_token: str | None = None


def _position(feed: feeds.FeedName, cursor: str) -> int:
    """The position a cursor of `feed` holds; 422 invalid_cursor for anything else."""
    if len(cursor) > MAX_CURSOR_CHARS:
        raise InvalidCursor("The cursor is not one this service gave out.")
    name, position = decode_cursor(cursor, (str, int))
    if name != feed.value or position < 0:
        raise InvalidCursor(f"The cursor is not one of the {feed.value} feed.")
    return int(position)


@dataclass(frozen=True)
class Reader:
    """Who reads a feed, as it names itself: a consumer and the dataset it loads into;
    `reports`: it will say when its destination committed the rows (the read is finished
    then, not when sent)."""

    consumer: str | None = None
    dataset: str | None = None
    reports: bool = False


async def read(
    *,
    engine: AsyncEngine,
    feed: feeds.FeedName,
    since: str | None,
    period: Period,
    reader: Reader | None = None,
) -> Read:
    """The rows of `feed` changed after `since` (all of them without it), in `period`;
    the read is logged in `syncs` with who read (`reader`)."""
    start = _position(feed, since) if since is not None else None
    who = reader or Reader()
    is_fx = feed is feeds.FeedName.FX_RATES
    async with engine.connect() as sa_conn:
        conn = await driver_connection(sa_conn)
        # Taken before the rows are read: whatever it covers is visible to the COPY.
        now: int = await conn.fetchval(feeds.FX_CURSOR if is_fx else feeds.UPLOADS_CURSOR)
        if start is not None and start > now:
            raise InvalidCursor(f"The cursor is ahead of the {feed.value} feed.")
        if is_fx:
            query = feeds.fx_rates(start)
        else:
            changed = None
            if start is not None:
                changed = [r[0] for r in await conn.fetch(feeds.CHANGED_UPLOADS, start)]
            first, last = (d.isoformat() if d else None for d in (period.start, period.end))
            query = feeds.rows(feed, changed, (first, last))
        next_cursor = encode_cursor([feed.value, now])
        token = secrets.token_urlsafe(24) if who.reports else None
        async with conn.transaction():
            sync_id: int = await conn.fetchval(
                feeds.RECORD_READ,
                feed.value,
                since,
                next_cursor,
                who.consumer,
                who.dataset,
                _digest(token) if token else None,
            )

    async def done(rows: int) -> None:
        async with engine.connect() as sa_conn:
            conn = await driver_connection(sa_conn)
            await conn.execute(feeds.FINISH_READ, sync_id, rows)

    return Read(next_cursor, parquet.stream(engine, feed, query, done), sync_id, token)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def report_finished(*, engine: AsyncEngine, reads: list[tuple[int, str]]) -> list[int]:
    """Mark finished the reads whose reader reports its destination committed them:
    those of `reads` (sync id, the read's token) sent whole, whose token is the one the
    read answered with, not finished yet."""
    ids = [sync_id for sync_id, _ in reads]
    digests = [_digest(token) for _, token in reads]
    async with engine.begin() as sa_conn:
        conn = await driver_connection(sa_conn)
        rows = await conn.fetch(feeds.REPORT_FINISHED, ids, digests)
    return sorted(r["sync_id"] for r in rows)


async def instance_id(*, session: AsyncSession) -> str:
    """This service's id (its migration made it): a sync's default dataset."""
    found = await session.scalar(text("SELECT instance_id FROM instance"))
    return str(found)


# The log of reads, read through a session in `:name` style (feeds.py holds the `$n`
# statements that reads run on asyncpg).
LIST_READS = """
SELECT sync_id, feed, cursor_from, cursor_to, rows, read_at, sent_at, finished_at,
    report_digest IS NOT NULL AS reports, consumer, dataset
FROM syncs
WHERE (CAST(:feed AS text) IS NULL OR feed = :feed)
    AND (CAST(:consumer AS text) IS NULL OR consumer = :consumer)
    AND (CAST(:before AS bigint) IS NULL OR sync_id < :before)
ORDER BY sync_id DESC
LIMIT :limit
"""


async def reads(
    *,
    session: AsyncSession,
    feed: str | None,
    before: int | None,
    limit: int,
    consumer: str | None = None,
) -> list[dict[str, Any]]:
    """The log of feed reads, newest first (of one consumer's, if given)."""
    result = await session.execute(
        text(LIST_READS),
        {"feed": feed, "before": before, "limit": limit, "consumer": consumer},
    )
    return [dict(row._mapping) for row in result]
