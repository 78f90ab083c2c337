"""The rate cache: a table that survives restarts and is shared by workers, a dict in
front of it, and single-flight so that concurrent misses make one upstream call: within
a process by `SingleFlight`, across processes by an advisory lock (`RateStore.locked`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

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
# A transaction-level advisory lock on (namespace, hash of the rate's name): the two-int4
# key space, apart from the uploads' one-bigint merge lock. Released at commit or
# rollback, and by PostgreSQL when the connection dies, so a killed worker frees it.
FX_LOCK_NAMESPACE = 0x4658  # "FX"
LOCK = "SELECT pg_advisory_xact_lock(:namespace, hashtext(:name))"
SAVE = """
INSERT INTO fx_rates (source, base, quote, kind, rate_date, as_of, rate, fetched_at)
VALUES (:source, :base, :quote, :kind, :day, :as_of, :rate, :fetched_at)
ON CONFLICT (source, base, quote, kind, rate_date) DO UPDATE
SET rate = EXCLUDED.rate, as_of = EXCLUDED.as_of, fetched_at = EXCLUDED.fetched_at,
    changed_xid = EXCLUDED.changed_xid
"""


class RateStore:
    """The persistent layer: the `fx_rates` table. A store made by `locked` runs every
    statement on the connection that holds the lock, inside its transaction."""

    def __init__(
        self, engine: AsyncEngine, source: str, *, conn: AsyncConnection | None = None
    ) -> None:
        self._engine = engine
        self._source = source
        self._conn = conn

    @asynccontextmanager
    async def locked(self, name: str) -> AsyncIterator[RateStore]:
        """Hold, across every process on this database, the right to fetch rate `name`
        from the provider; what is saved in the block commits as the lock is released.
        Callers re-read the table first: another process may have fetched it meanwhile."""
        async with self._engine.connect() as conn, conn.begin():
            await conn.execute(
                text(LOCK), {"namespace": FX_LOCK_NAMESPACE, "name": f"{self._source}:{name}"}
            )
            yield RateStore(self._engine, self._source, conn=conn)

    async def latest(self) -> Rate | None:
        return await self._one(LATEST, kind=RateKind.LATEST.value)

    async def on_day(self, day: date) -> Rate | None:
        return await self._one(ON_DAY, kind=RateKind.HISTORICAL.value, day=day)

    async def nearest(self, day: date) -> Rate | None:
        return await self._one(NEAREST, day=day)

    async def save(self, kind: RateKind, day: date, quote: Quote, fetched_at: datetime) -> None:
        params = {
            "source": self._source,
            "base": BASE,
            "quote": QUOTE,
            "kind": kind.value,
            "day": day,
            "as_of": min(quote.as_of, day),
            "rate": quote.rate,
            "fetched_at": fetched_at,
        }
        if self._conn is not None:
            await self._conn.execute(text(SAVE), params)
            return
        async with self._engine.begin() as conn:
            await conn.execute(text(SAVE), params)

    async def _one(self, sql: str, **params: Any) -> Rate | None:
        values = {"source": self._source, "base": BASE, "quote": QUOTE, **params}
        if self._conn is not None:
            row = (await self._conn.execute(text(sql), values)).first()
        else:
            async with self._engine.connect() as conn:
                row = (await conn.execute(text(sql), values)).first()
        if row is None:
            return None
        return Rate(rate=row.rate, as_of=row.as_of, fetched_at=row.fetched_at, source=self._source)
