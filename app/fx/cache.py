"""The rate cache: a table that survives restarts and is shared by workers, a dict in
front of it, and single-flight so that concurrent misses make one upstream call."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.fx.models import RateKind
from app.fx.providers import BASE, QUOTE, Quote

T = TypeVar("T")


@dataclass(frozen=True)
class Rate:
    """A rate as answers state it: which, from where, for which day, fetched when."""

    rate: Decimal
    as_of: date
    fetched_at: datetime
    source: str
    stale: bool = False

    @property
    def base(self) -> str:
        return BASE

    @property
    def quote(self) -> str:
        return QUOTE


class SingleFlight:
    """Callers asking for the same key while a call is under way share its result."""

    def __init__(self) -> None:
        self._inflight: dict[Hashable, asyncio.Future[Any]] = {}

    async def run(self, key: Hashable, call: Callable[[], Awaitable[T]]) -> T:
        future = self._inflight.get(key)
        if future is None:
            future = asyncio.ensure_future(call())
            self._inflight[key] = future
            future.add_done_callback(lambda _: self._inflight.pop(key, None))
        # A caller that gives up (cancelled) must not cancel the call the others wait on.
        result: T = await asyncio.shield(future)
        return result


_SELECT = """
SELECT rate, as_of, fetched_at FROM fx_rates
WHERE source = :source AND base = :base AND quote = :quote AND kind = :kind
"""
LATEST = _SELECT + " ORDER BY fetched_at DESC LIMIT 1"
ON_DAY = _SELECT + " AND rate_date = :day"
# The nearest rate known before a day, of either kind: what a stale answer falls back to.
NEAREST = """
SELECT rate, as_of, fetched_at FROM fx_rates
WHERE source = :source AND base = :base AND quote = :quote AND as_of <= :day
ORDER BY as_of DESC, fetched_at DESC LIMIT 1
"""
SAVE = """
INSERT INTO fx_rates (source, base, quote, kind, rate_date, as_of, rate, fetched_at)
VALUES (:source, :base, :quote, :kind, :day, :as_of, :rate, :fetched_at)
ON CONFLICT (source, base, quote, kind, rate_date) DO UPDATE
SET rate = EXCLUDED.rate, as_of = EXCLUDED.as_of, fetched_at = EXCLUDED.fetched_at
"""


class RateStore:
    """The persistent layer: the `fx_rates` table."""

    def __init__(self, engine: AsyncEngine, source: str) -> None:
        self._engine = engine
        self._source = source

    async def latest(self) -> Rate | None:
        return await self._one(LATEST, kind=RateKind.LATEST.value)

    async def on_day(self, day: date) -> Rate | None:
        return await self._one(ON_DAY, kind=RateKind.HISTORICAL.value, day=day)

    async def nearest(self, day: date) -> Rate | None:
        return await self._one(NEAREST, day=day)

    async def save(self, kind: RateKind, day: date, quote: Quote, fetched_at: datetime) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                text(SAVE),
                {
                    "source": self._source,
                    "base": BASE,
                    "quote": QUOTE,
                    "kind": kind.value,
                    "day": day,
                    "as_of": min(quote.as_of, day),
                    "rate": quote.rate,
                    "fetched_at": fetched_at,
                },
            )

    async def _one(self, sql: str, **params: Any) -> Rate | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    text(sql), {"source": self._source, "base": BASE, "quote": QUOTE, **params}
                )
            ).first()
        if row is None:
            return None
        return Rate(rate=row.rate, as_of=row.as_of, fetched_at=row.fetched_at, source=self._source)
