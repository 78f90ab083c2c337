"""GET /alerts: every alert raised, newest first, and whether it was delivered."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from app.alerts import service
from app.alerts.deps import AlerterDep
from app.errors import DATABASE_ERRORS, ErrorResponse
from app.kit.deps import EngineDep
from app.kit.pagination import IdCursorQuery, IdKeyset, LimitQuery, Page
from app.security import ApiKeyDep

router = APIRouter(tags=["health"], responses=DATABASE_ERRORS)

EVENTS = (
    "upload_failed",
    "data_stale",
    "consumer_stale",
    "demand_spike",
    "forecast_failed",
    "forecast_lost",
    "step_failed",
)


class AlertRead(BaseModel):
    alert_id: int
    event: str = Field(description=f"One of {', '.join(EVENTS)}")
    subject: str = Field(description="What it is about: `upload 12`, `product 7 on 2024-12-01`")
    message: str
    raised_at: dt.datetime
    sent_at: dt.datetime | None = Field(description="When delivery was tried; null: no ALERT_URLS")
    delivered: bool = Field(description="Every ALERT_URLS address took it")
    error: str | None = Field(description="Why it was not delivered")


# Newest first: a page's cursor is its last alert's id.
ALERTS = IdKeyset[dict[str, Any]]((int,), key=lambda row: (row["alert_id"],))


@router.get("/alerts", summary="Every alert raised, newest first, and whether it was delivered")
async def alerts(
    engine: EngineDep,
    event: Annotated[
        str | None, Query(pattern=r"^[a-z_]{1,32}$", description="Only this event")
    ] = None,
    limit: LimitQuery = 100,
    cursor: IdCursorQuery = None,
) -> Page[AlertRead]:
    rows = await service.listed(engine, event, ALERTS.after(cursor), limit + 1)
    rows, next_cursor = ALERTS.cut(rows, limit)
    return Page[AlertRead](items=[AlertRead(**r) for r in rows], next_cursor=next_cursor)


# PostgreSQL text cannot hold NUL: refused here (422) rather than failing there (a 500
# Schemathesis found).
NO_NUL = "^[^\x00]*$"


class StepFailure(BaseModel):
    """A step of work outside the service that failed (a sync, a pipeline step)."""

    subject: str = Field(
        min_length=1,
        max_length=service.MAX_SUBJECT,
        pattern=NO_NUL,
        description="What failed: `sync`, `dbt`",
    )
    message: str = Field(
        min_length=1, max_length=4000, pattern=NO_NUL, description="Why, in a line or a few"
    )
    key: str | None = Field(
        None,
        max_length=200,
        pattern=NO_NUL,
        description="What makes it the same failure when told again (a run's id); absent:"
        " the subject and message",
    )


class Raised(BaseModel):
    alert_id: int | None = Field(description="The new alert's id; null: told before")


@router.post(
    "/alerts",
    summary="Tell a failed step of work outside the service (a sync, a pipeline step)",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[ApiKeyDep],
    responses={
        400: {"model": ErrorResponse, "description": "A body that cannot be parsed"},
        401: {"model": ErrorResponse, "description": "Missing or wrong X-API-Key"},
        403: {"model": ErrorResponse, "description": "A read key: it may not write"},
    },
)
async def tell(failure: StepFailure, alerter: AlerterDep) -> Raised:
    """Recorded as `step_failed` (once per subject and key) and sent to ALERT_URLS; a
    database that cannot record it is 503 `database_unavailable`, never a null id."""
    key = failure.key if failure.key is not None else f"{failure.subject}|{failure.message}"
    event = service.Event("step_failed", failure.subject, failure.message, key=key)
    return Raised(alert_id=await alerter.raise_(event, quiet=False))
