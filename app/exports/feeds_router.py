"""GET /exports/{feed}.parquet (the warehouse change feeds) and GET /syncs (their reads).

Parquet whatever the Accept header: a warehouse loader asks for a file, not a format.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from app.config import FxMode
from app.db import SessionDep
from app.deps import EngineDep
from app.errors import DATABASE_ERRORS, ErrorResponse, NotFound
from app.exports import feeds, parquet, service
from app.exports.models import MAX_CONSUMER
from app.filters import IsoDate, Period, period
from app.formats import MAX_LIMIT, CsvResponse
from app.fx.deps import FxDep
from app.responses import FX_ERRORS

router = APIRouter(tags=["warehouse"], responses=DATABASE_ERRORS)

PARQUET_ONLY: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {parquet.PARQUET_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        "headers": {
            "X-Next-Cursor": {
                "description": "Pass as `since` to read only what changes after this read",
                "schema": {"type": "string"},
            }
        },
    },
    404: {"model": ErrorResponse, "description": "No such feed"},
    422: {"model": ErrorResponse, "description": "`invalid_cursor`, bad date, reversed period"},
}


# A consumer's or dataset's name: letters, digits and `_.:@/-`, at most 64 characters.
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@/-]*$", max_length=MAX_CONSUMER)]


class FeedQuery(BaseModel):
    """Which rows of a feed: those changed after `since`, in the period."""

    # No max_length: an over-long cursor is a malformed one, 422 invalid_cursor like any
    # other (service._position), not a validation_error.
    since: str | None = Field(
        None,
        description="`X-Next-Cursor` of an earlier read of the same feed; absent: every row.",
    )
    start: IsoDate | None = Field(
        None, description="orders and order_full_information: first day (YYYY-MM-DD)"
    )
    end: IsoDate | None = Field(
        None, description="orders and order_full_information: last day (YYYY-MM-DD)"
    )
    consumer: Name | None = Field(
        None,
        description="Who reads, as it names itself (a warehouse sync's `--consumer`): logged"
        " in `/syncs`, and `/freshness` says how old each consumer's copy is",
    )
    dataset: Name | None = Field(
        None, description="Where the reader loads the rows (its warehouse dataset), logged too"
    )


class ParquetResponse(CsvResponse):
    """A streamed file whose first chunk is read before the answer starts (see
    CsvResponse)."""

    media_type = parquet.PARQUET_MEDIA_TYPE


@router.get(
    "/exports/{feed}.parquet",
    summary="A change feed as Parquet: every row, or those changed after `since`",
    response_class=StreamingResponse,
    responses={**PARQUET_ONLY, **FX_ERRORS},
)
async def feed(
    feed: str, engine: EngineDep, fx: FxDep, query: Annotated[FeedQuery, Query()]
) -> StreamingResponse:
    try:
        name = feeds.FeedName(feed)
    except ValueError:
        known = ", ".join(f"{f.value}.parquet" for f in feeds.FeedName)
        raise NotFound(f"No export {feed}.parquet; there are {known}.") from None
    if name is feeds.FeedName.FX_RATES:
        await fx.conversion(FxMode.LATEST)  # no rate cached: fetched, as USD answers do
    span = period(query.start, query.end) if name in feeds.DATED else Period()
    result = await service.read(
        engine=engine,
        feed=name,
        since=query.since,
        period=span,
        reader=service.Reader(query.consumer, query.dataset),
    )
    return ParquetResponse(
        result.body,
        media_type=parquet.PARQUET_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{name.value}.parquet"',
            "X-Next-Cursor": result.next_cursor,
        },
    )


class SyncRead(BaseModel):
    sync_id: int
    feed: str
    cursor_from: str | None
    cursor_to: str
    rows: int | None = Field(description="Rows sent; null while streaming or if cut short")
    read_at: datetime
    finished_at: datetime | None
    consumer: str | None = Field(description="Who read (`?consumer=`); null if it gave no name")
    dataset: str | None = Field(description="Where it loads them (`?dataset=`)")


class SyncPage(BaseModel):
    items: list[SyncRead]
    next_cursor: str | None


class SyncsQuery(BaseModel):
    feed: feeds.FeedName | None = None
    consumer: Name | None = Field(None, description="Only this consumer's reads")
    limit: int = Field(100, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(
        None, pattern=r"^[0-9]{1,18}$", description="`next_cursor` of the previous page"
    )


@router.get(
    "/syncs",
    summary="Every read of a feed: feed, cursors from and to, rows, when (newest first)",
    response_model=SyncPage,
)
async def syncs(session: SessionDep, query: Annotated[SyncsQuery, Query()]) -> SyncPage:
    before = int(query.cursor) if query.cursor is not None else None
    rows = await service.reads(
        session=session,
        feed=query.feed.value if query.feed else None,
        before=before,
        limit=query.limit + 1,
        consumer=query.consumer,
    )
    more = len(rows) > query.limit
    items = [SyncRead(**r) for r in rows[: query.limit]]
    return SyncPage(items=items, next_cursor=str(items[-1].sync_id) if more else None)
