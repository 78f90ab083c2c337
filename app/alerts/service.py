"""Raising alerts: each event recorded once (its `dedupe_key`), then sent to every
ALERT_URLS address through Apprise (Slack, e-mail, webhooks, ~100 services) in the
background. Raising never fails, nor waits for, the work that raised it: a database
error is logged, a delivery that fails or takes longer than ALERT_TIMEOUT_SECONDS is
recorded as not delivered."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import driver_connection
from app.freshness.service import Freshness

log = logging.getLogger(__name__)

# Raised again, an event is not inserted (nor does it draw an id: checks that run on every
# scrape raise the same stale consumer over and over).
RAISE = """
INSERT INTO alerts (event, subject, dedupe_key, message)
SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM alerts WHERE dedupe_key = $3)
ON CONFLICT (dedupe_key) DO NOTHING
RETURNING alert_id
"""
SENT = (
    "UPDATE alerts SET sent_at = clock_timestamp(), delivered = $2, error = $3 WHERE alert_id = $1"
)
LIST = """
SELECT alert_id, event, subject, message, raised_at, sent_at, delivered, error
FROM alerts
WHERE ($1::text IS NULL OR event = $1) AND ($2::bigint IS NULL OR alert_id < $2)
ORDER BY alert_id DESC
LIMIT $3
"""
MAX_SUBJECT = 200


@dataclass(frozen=True)
class Event:
    """One thing worth telling: its kind, what it is about, the text, and what makes it
    the same event when raised again (by default its kind and subject)."""

    event: str
    subject: str
    message: str
    key: str | None = None

    @property
    def dedupe_key(self) -> str:
        return f"{self.event}:{self.key if self.key is not None else self.subject}"


def _send(urls: tuple[str, ...], title: str, body: str) -> str | None:
    """Deliver to every URL (blocking: run in a thread); None, or what went wrong."""
    import apprise  # imported when the first alert goes out: the service starts without it

    notifier = apprise.Apprise()
    refused = [url.split("://", 1)[0] for url in urls if not notifier.add(url)]
    if not len(notifier):
        return "no usable ALERT_URLS" + (f" ({', '.join(refused)}:// refused)" if refused else "")
    result = notifier.notify(title=title, body=body)
    if refused:
        return f"{', '.join(refused)}:// refused"
    return None if bool(result) else "not every address took it"


# Alerts are never worth blocking the work around them: a statement of theirs that waits
# for a lock this long gives up (the check is logged as not done) before PostgreSQL's
# deadlock check (1 s) could pick the other side of a deadlock as its victim.
LOCK_TIMEOUT = "200ms"


@contextlib.asynccontextmanager
async def _connection(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """A connection in a transaction whose lock waits are cut at LOCK_TIMEOUT."""
    async with engine.connect() as sa_conn:
        conn = await driver_connection(sa_conn)
        async with conn.transaction():
            await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            yield conn


class Alerter:
    """Raises alerts for one app: records them, sends them, and lets sends finish at
    shutdown (at most ALERT_TIMEOUT_SECONDS)."""

    def __init__(self, engine: AsyncEngine, urls: tuple[str, ...], timeout: float) -> None:
        self._engine, self._urls, self._timeout = engine, urls, timeout
        self._sending: set[asyncio.Task[None]] = set()

    async def raise_(self, event: Event, *, quiet: bool = True) -> int | None:
        """Record the event unless it was raised before; send it in the background. Its
        alert id, or None when it is not new. When it cannot be recorded: None, logged,
        if `quiet` (the work that raised it goes on), else the error."""
        try:
            async with _connection(self._engine) as conn:
                subject = event.subject[:MAX_SUBJECT]
                alert_id: int | None = await conn.fetchval(
                    RAISE, event.event, subject, event.dedupe_key, event.message
                )
        except Exception as exc:
            if not quiet:
                raise
            log.warning("alert %s not recorded: %s: %s", event.dedupe_key, type(exc).__name__, exc)
            return None
        if alert_id is None:
            return None
        log.warning("alert %s: %s", event.event, event.message)
        if self._urls:
            task = asyncio.create_task(self._deliver(alert_id, event), name=f"alert {alert_id}")
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        return alert_id

    def soon(self, events: Awaitable[list[Event]] | list[Event]) -> None:
        """Raise `events` (or what an awaitable of them gives) in the background: the
        request that found them answers without waiting for the database or a receiver."""

        async def raising() -> None:
            try:
                found = events if isinstance(events, list) else await events
            except Exception as exc:
                log.warning("alerts not checked: %s: %s", type(exc).__name__, exc)
                return
            for event in found:
                await self.raise_(event)

        if isinstance(events, list) and not events:
            return
        task = asyncio.create_task(raising(), name="alerts")
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _deliver(self, alert_id: int, event: Event) -> None:
        title = f"Orderlens: {event.event.replace('_', ' ')} ({event.subject})"
        try:
            error = await asyncio.wait_for(
                asyncio.to_thread(_send, self._urls, title, event.message), self._timeout
            )
        except TimeoutError:
            error = f"no answer within {self._timeout:g} s"
        except Exception as exc:  # a plugin's own failure: recorded, never raised
            error = f"{type(exc).__name__}: {exc}"
        if error is not None:
            log.warning("alert %s not delivered: %s", alert_id, error)
        try:
            async with _connection(self._engine) as conn:
                await conn.execute(SENT, alert_id, error is None, error)
        except Exception as exc:
            log.warning("alert %s: delivery not recorded: %s", alert_id, exc)

    async def close(self) -> None:
        """Let the sends in flight finish (each is bounded by the timeout)."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)


async def listed(
    engine: AsyncEngine, event: str | None, before: int | None, limit: int
) -> list[dict[str, Any]]:
    async with engine.connect() as sa_conn:
        conn = await driver_connection(sa_conn)
        return [dict(r) for r in await conn.fetch(LIST, event, before, limit)]


# --- the events ------------------------------------------------------------------------


def upload_failed(kind: str, upload_id: int, code: str, message: str) -> Event:
    return Event(
        "upload_failed",
        f"upload {upload_id}",
        f"The {kind} upload {upload_id} failed: {code}: {message}",
    )


def freshness_events(now: Freshness) -> list[Event]:
    """The data stale past the SLA (once per last upload: a new upload that goes stale
    again alerts again), and each consumer likewise (once per last finished read). Before
    the first upload nothing is stale enough to tell: there is no data yet."""
    out = []
    if now.stale and now.last_upload_at is not None:
        out.append(
            Event(
                "data_stale",
                "data",
                f"No upload succeeded for {now.age_seconds or 0:,.0f} s"
                f" (SLA {now.sla_seconds:,} s); the last at {now.last_upload_at.isoformat()}.",
                key=now.last_upload_at.isoformat(),
            )
        )
    for c in now.consumers:
        if not c.stale:
            continue
        name = c.consumer + (f" ({c.dataset})" if c.dataset else "")
        last = c.last_sync_finished_at.isoformat() if c.last_sync_finished_at else "never"
        out.append(
            Event(
                "consumer_stale",
                name,
                f"The warehouse consumer {name} has not finished a read of the feeds for"
                f" {c.age_seconds or 0:,.0f} s (SLA {now.sla_seconds:,} s); last: {last}.",
                key=f"{c.consumer}|{c.dataset}|{last}",
            )
        )
    return out


def forecast_events(
    run_id: int, error: dict[str, str] | None, level_accuracy: list[dict[str, Any]]
) -> list[Event]:
    """A forecast run that failed, or whose served forecasts were further off than
    seasonal naive's on held-out days at category level (mean absolute error)."""
    # Only called once a run ended: its computation has imported pandas already.
    from app.forecasting.levels import CATEGORY, SEASONAL_NAIVE

    subject = f"forecast run {run_id}"
    if error is not None:
        return [
            Event(
                "forecast_failed",
                subject,
                f"Forecast run {run_id} failed: {error.get('code')}: {error.get('message')}",
            )
        ]
    category = [a for a in level_accuracy if a["level"] == CATEGORY]
    served = next((a for a in category if a["scope"] == "served"), None)
    naive = next(
        (a for a in category if a["scope"] == "all" and a["model"] == SEASONAL_NAIVE), None
    )
    if served is None or naive is None or served["mae"] is None or naive["mae"] is None:
        return []
    if served["mae"] <= naive["mae"]:
        return []
    return [
        Event(
            "forecast_lost",
            subject,
            f"Forecast run {run_id}: at category level its forecasts ({served['model']}) were"
            f" further off on held-out days than seasonal naive's: mean absolute error"
            f" {served['mae']:.3f} against {naive['mae']:.3f} units a day.",
        )
    ]


# A day's units at least `$2` times the product's mean over the 28 days before (zero days
# included), and at least `$3` units, among the product-days upload `$1` wrote; the
# strongest first, at most `$4`. Only a product that sold 28 days before or earlier: its
# window is one of its own life (a new product's first days, and a data set's first
# month, have no mean to be measured against).
SPIKES = """
WITH touched AS (
    SELECT DISTINCT product_id, created_date FROM orders WHERE upload_id = $1
),
candidates AS (
    SELECT c.product_id, c.created_date, c.quantity
    FROM touched t
    JOIN product_daily_sales c
        ON c.product_id = t.product_id AND c.created_date = t.created_date
    WHERE c.quantity >= $3
)
SELECT x.product_id, coalesce(p.code, x.product_id::text) AS shown, p.name, p.category,
    x.created_date, x.quantity, round(coalesce(b.units, 0) / 28.0, 2) AS mean
FROM candidates x
JOIN products p ON p.product_id = x.product_id
CROSS JOIN LATERAL (
    SELECT sum(d.quantity) AS units FROM product_daily_sales d
    WHERE d.product_id = x.product_id
        AND d.created_date >= x.created_date - 28 AND d.created_date < x.created_date
) b
WHERE x.quantity >= $2::numeric * coalesce(b.units, 0) / 28.0
    AND EXISTS (
        SELECT 1 FROM product_daily_sales e
        WHERE e.product_id = x.product_id AND e.created_date <= x.created_date - 28
    )
ORDER BY x.quantity / greatest(coalesce(b.units, 0) / 28.0, 0.01) DESC, x.product_id, x.created_date
LIMIT $4
"""
MAX_SPIKES = 20  # per upload: a file that moves a thousand products is one story, not a flood


async def demand_spikes(
    engine: AsyncEngine, upload_id: int, factor: Decimal, min_units: int
) -> list[Event]:
    """The demand spikes among the product-days an orders upload wrote."""
    async with _connection(engine) as conn:
        rows = await conn.fetch(SPIKES, upload_id, factor, min_units, MAX_SPIKES)
    out = []
    for product_id, shown, name, category, day, quantity, mean in rows:
        ratio = f"{quantity / mean:,.1f}× its" if mean else "against no sales in the"
        out.append(
            Event(
                "demand_spike",
                f"product {shown} on {day.isoformat()}",
                f"{name} ({category}, product {shown}): {quantity:,} units on {day.isoformat()},"
                f" {ratio} 28-day mean of {mean} a day.",
                key=f"{product_id}|{day.isoformat()}",
            )
        )
    return out
