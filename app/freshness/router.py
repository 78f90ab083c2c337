"""GET /freshness: is the data current, and is each warehouse consumer's copy of it."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.alerts.deps import AlerterDep
from app.alerts.service import freshness_events
from app.errors import DATABASE_ERRORS
from app.freshness import service
from app.kit.deps import EngineDep, SettingsDep

router = APIRouter(tags=["health"], responses=DATABASE_ERRORS)


class ConsumerFreshness(BaseModel):
    consumer: str = Field(description="The name a reader of the feeds gave (`?consumer=`)")
    dataset: str | None = Field(description="Where it loads them (`?dataset=`)")
    last_sync_finished_at: dt.datetime | None = Field(
        description="When its last read of a feed finished; null if none has"
    )
    age_seconds: float | None = Field(description="Seconds since then")
    stale: bool = Field(description="Older than `sla_seconds`, or never finished")


class FreshnessRead(BaseModel):
    data_until: dt.date | None = Field(description="The last day with orders (not a future one)")
    last_upload_at: dt.datetime | None = Field(description="When the last upload succeeded")
    last_forecast_at: dt.datetime | None = Field(description="When the last forecast finished")
    age_seconds: float | None = Field(description="Seconds since the last upload succeeded")
    sla_seconds: int = Field(description="FRESHNESS_SLA_SECONDS")
    stale: bool = Field(description="No upload succeeded within `sla_seconds`")
    consumers: list[ConsumerFreshness] = Field(
        description="Each named reader of the feeds, per dataset, by name"
    )


@router.get(
    "/freshness",
    summary="How old the data and each warehouse consumer's copy are, against the SLA",
)
async def freshness(engine: EngineDep, settings: SettingsDep, alerter: AlerterDep) -> FreshnessRead:
    now = await service.read(engine, settings.freshness_sla_seconds)
    alerter.soon(freshness_events(now))  # stale past the SLA: told once
    return FreshnessRead.model_validate(now, from_attributes=True)
