"""GET /exports/{feed}.parquet (the warehouse change feeds) and GET /syncs (their reads).

Parquet whatever the Accept header: a warehouse loader asks for a file, not a format.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from app.config import FxMode
from app.db import SessionDep
from app.errors import DATABASE_ERRORS, ErrorResponse, NotFound
from app.exports import feeds, parquet, service
from app.exports.models import MAX_CONSUMER
from app.fx.deps import FxDep
from app.kit.csv import CsvResponse
from app.kit.deps import EngineDep
from app.kit.openapi import FX_ERRORS
from app.kit.pagination import IdCursorQuery, IdKeyset, LimitQuery, Page
from app.kit.params import IsoDate, Period, period

router = APIRouter(tags=["warehouse"], responses=DATABASE_ERRORS)

PARQUET_ONLY: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {parquet.PARQUET_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        "headers": {
            "X-Next-Cursor": {
                "description": "Pass as `since` to read only what changes after this read",
                "schema": {"type": "string"},
            },
            "X-Sync-Id": {
                "description": "This read's `sync_id` in `/syncs` (a reader that reports"
                " names it in `POST /syncs/finished`)",
                "schema": {"type": "string"},
            },
            "X-Sync-Token": {
                "description": "With `report=true`: the secret that proves the read is"
                " the reader's own, for `POST /syncs/finished`",
                "schema": {"type": "string"},
            },
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
    report: bool = Field(
        False,
        description="The reader will report when its destination committed the rows"
        " (`POST /syncs/finished` with the answer's `X-Sync-Id` and `X-Sync-Token`): the"
        " read is `finished` in `/syncs` only then. Without it, a read is finished when"
        " sent whole",
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
        reader=service.Reader(query.consumer, query.dataset, query.report),
    )
    return ParquetResponse(
        result.body,
        media_type=parquet.PARQUET_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{name.value}.parquet"',
            "X-Next-Cursor": result.next_cursor,
            "X-Sync-Id": str(result.sync_id),
            **({"X-Sync-Token": result.report_token} if result.report_token else {}),
        },
    )


class SyncRead(BaseModel):
    sync_id: int
    feed: str
    cursor_from: str | None
    cursor_to: str
    rows: int | None = Field(description="Rows sent; null while streaming or if cut short")
    read_at: datetime
    sent_at: datetime | None = Field(description="When the file was sent whole")
    finished_at: datetime | None = Field(
        description="When the read finished: sent whole, and for a reader that reports"
        " (`reports`), once its destination committed the rows"
    )
    reports: bool = Field(description="The reader reports its commit (`?report=true`)")
    status: Literal["reading", "sent", "finished"] = Field(
        description="`reading` (or cut short), `sent` (whole; its reader has not reported"
        " a commit: a sync still loading, or one that failed), `finished`"
    )
    consumer: str | None = Field(description="Who read (`?consumer=`); null if it gave no name")
    dataset: str | None = Field(description="Where it loads them (`?dataset=`)")

    @classmethod
    def of(cls, row: dict[str, Any]) -> SyncRead:
        status = "finished" if row["finished_at"] else "sent" if row["sent_at"] else "reading"
        return cls(**row, status=status)


class FinishedRead(BaseModel):
    model_config = ConfigDict(strict=True)  # an id is a JSON integer, not `true` or "1"

    sync_id: int = Field(ge=1, le=2**63 - 1, description="The read's `X-Sync-Id`")
    token: str = Field(min_length=1, max_length=64, description="The read's `X-Sync-Token`")


class FinishedReads(BaseModel):
    reads: list[FinishedRead] = Field(
        min_length=1, max_length=1000, description="Each read the destination committed"
    )


class FinishedAnswer(BaseModel):
    finished: list[int] = Field(
        description="The reads now finished; the others were not sent whole, not asked to be"
        " reported (`?report=true`), named with another token, finished before, or are not"
        " known"
    )


# Newest first: a page's cursor is its last read's id.
SYNCS = IdKeyset[dict[str, Any]]((int,), key=lambda row: (row["sync_id"],))


@router.get(
    "/syncs",
    summary="Every read of a feed: feed, cursors from and to, rows, when (newest first)",
    response_model=Page[SyncRead],
)
async def syncs(
    session: SessionDep,
    feed: feeds.FeedName | None = None,
    consumer: Annotated[Name | None, Query(description="Only this consumer's reads")] = None,
    limit: LimitQuery = 100,
    cursor: IdCursorQuery = None,
) -> Page[SyncRead]:
    rows = await service.reads(
        session=session,
        feed=feed.value if feed else None,
        before=SYNCS.after(cursor),
        limit=limit + 1,
        consumer=consumer,
    )
    rows, next_cursor = SYNCS.cut(rows, limit)
    return Page[SyncRead](items=[SyncRead.of(r) for r in rows], next_cursor=next_cursor)


class InstanceAnswer(BaseModel):
    instance_id: str = Field(
        description="This service's id, made when its database was: the warehouse dataset"
        " (schema) `orderlens sync` loads into unless given `--dataset`, so that two"
        " services syncing into one warehouse stay apart",
        examples=["orderlens_3f9a2c1b7e"],
    )


@router.get(
    "/instance",
    summary="This service's id: the dataset a warehouse sync loads into by default",
    response_model=InstanceAnswer,
)
async def instance(session: SessionDep) -> InstanceAnswer:
    return InstanceAnswer(instance_id=await service.instance_id(session=session))


@router.post(
    "/syncs/finished",
    summary="A reader's destination committed these reads: they are finished",
    description="Authorized by each read's own token (`X-Sync-Token`, given to the reader"
    " that asked `?report=true`), not by the write key: a sync with a read key reports its"
    " own reads, and nobody else's.",
    response_model=FinishedAnswer,
    responses={400: {"model": ErrorResponse, "description": "A body that cannot be parsed"}},
)
async def finished(engine: EngineDep, body: FinishedReads) -> FinishedAnswer:
    reads = [(r.sync_id, r.token) for r in body.reads]
    return FinishedAnswer(finished=await service.report_finished(engine=engine, reads=reads))
