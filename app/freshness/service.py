"""How old the data and each warehouse consumer's copy of it are, against the SLA
(FRESHNESS_SLA_SECONDS): what `GET /freshness` answers and the freshness gauges show."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import driver_connection

# The last day with orders (not a future one: a typo such as 2999-12-31 must not make
# the data look current), the last upload that succeeded and the last forecast run that
# finished; the clock they are measured against.
SOURCE = """
SELECT (SELECT max(created_date) FROM daily_sales WHERE created_date <= current_date),
    (SELECT max(finished_at) FROM uploads WHERE status = 'succeeded'),
    (SELECT max(finished_at) FROM forecast_runs WHERE status = 'succeeded'),
    clock_timestamp()
"""
# Each named reader of the feeds, per dataset it loads into: its last finished read.
CONSUMERS = """
SELECT consumer, dataset, max(finished_at)
FROM syncs WHERE consumer IS NOT NULL
GROUP BY consumer, dataset
ORDER BY consumer, dataset NULLS FIRST
"""


@dataclass(frozen=True)
class Consumer:
    consumer: str
    dataset: str | None
    last_sync_finished_at: dt.datetime | None
    age_seconds: float | None
    stale: bool


@dataclass(frozen=True)
class Freshness:
    data_until: dt.date | None
    last_upload_at: dt.datetime | None
    last_forecast_at: dt.datetime | None
    # Since the last upload that succeeded (null before the first).
    age_seconds: float | None
    sla_seconds: int
    stale: bool
    consumers: list[Consumer]
    # Since the last forecast run that finished (for the gauge).
    forecast_age_seconds: float | None


def _age(now: dt.datetime, then: dt.datetime | None) -> float | None:
    return None if then is None else max(0.0, (now - then).total_seconds())


def _stale(age: float | None, sla_seconds: int) -> bool:
    # Never refreshed is stale: there is nothing to be fresh.
    return age is None or age > sla_seconds


async def read(engine: AsyncEngine, sla_seconds: int) -> Freshness:
    """The data's and each consumer's age, as the database has them now."""
    async with engine.connect() as sa_conn:
        conn = await driver_connection(sa_conn)
        data_until, last_upload, last_forecast, now = await conn.fetchrow(SOURCE)
        rows = await conn.fetch(CONSUMERS)
    consumers = []
    for consumer, dataset, finished in rows:
        age = _age(now, finished)
        consumers.append(Consumer(consumer, dataset, finished, age, _stale(age, sla_seconds)))
    age = _age(now, last_upload)
    return Freshness(
        data_until=data_until,
        last_upload_at=last_upload,
        last_forecast_at=last_forecast,
        age_seconds=age,
        sla_seconds=sla_seconds,
        stale=_stale(age, sla_seconds),
        consumers=consumers,
        forecast_age_seconds=_age(now, last_forecast),
    )
