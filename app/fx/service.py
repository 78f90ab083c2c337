"""The FX service: one stated rate per answer, from the cache when it can, from the
provider when it must, stale rather than nothing when the provider is down."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import FxMode, FxProvider, Settings
from app.errors import AppError, NotFound
from app.fx.cache import Rate, RateStore, SingleFlight
from app.fx.models import RateKind
from app.fx.providers import (
    BASE,
    LOOKBACK_DAYS,
    QUOTE,
    Ecb,
    FreeCurrencyApi,
    FxConfigurationError,
    FxProviderError,
    FxTransientError,
    Provider,
    Quote,
)
from app.fx.schemas import FxInfo, fx_headers, rate_text
from app.metrics import Metrics

log = logging.getLogger(__name__)
T = TypeVar("T")

# After the provider fails, answers use the stored rate for this long before asking again,
# so that an outage costs one slow request, not every request.
FAILURE_BACKOFF_SECONDS = 30.0
DAYS_IN_FLIGHT = 8


@dataclass(frozen=True)
class Conversion:
    """The rate(s) one answer converts with: one for `latest`, one per day for
    `order_date`. Every USD figure of the answer comes from here."""

    mode: FxMode
    source: str
    latest: Rate | None = None
    by_day: Mapping[date, Rate] = field(default_factory=dict)

    def rate_on(self, day: date | None = None) -> Decimal:
        """The rate for an order of `day` (any day in `latest` mode)."""
        if self.latest is not None:
            return self.latest.rate
        assert day is not None, "order_date conversions need the order's day"
        return self.by_day[day].rate

    @property
    def stale(self) -> bool:
        if self.latest is not None:
            return self.latest.stale
        return any(r.stale for r in self.by_day.values())

    def info(self) -> FxInfo:
        if self.latest is not None:
            r = self.latest
            return FxInfo(
                base=r.base, quote=r.quote, rate=rate_text(r.rate), mode=self.mode,
                source=r.source, as_of=r.as_of, fetched_at=r.fetched_at, stale=r.stale,
            )  # fmt: skip
        rates = list(self.by_day.values())
        return FxInfo(
            base=BASE,
            quote=QUOTE,
            rate=None,
            mode=self.mode,
            source=self.source,
            as_of=None,
            fetched_at=max((r.fetched_at for r in rates), default=None),
            stale=self.stale,
            days=len(rates),
            first_as_of=min((r.as_of for r in rates), default=None),
            last_as_of=max((r.as_of for r in rates), default=None),
        )

    def headers(self) -> dict[str, str]:
        """The rate of a CSV answer, in its headers."""
        return fx_headers(self.info())


class FxUnavailable(AppError):
    status_code = 503
    code = "fx_unavailable"


class RateNotFound(NotFound):
    code = "rate_not_found"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _error_kind(exc: Exception) -> str:
    """The `error` label of a failed provider call."""
    if isinstance(exc, FxTransientError):
        return "transient"
    if isinstance(exc, FxConfigurationError):
        return "configuration"
    if isinstance(exc, FxProviderError):
        return "invalid_response"
    return "unexpected"


def _quote(rate: Rate) -> Quote:
    return Quote(rate.rate, rate.as_of)


class FxService:
    def __init__(
        self,
        *,
        provider: Provider,
        engine: AsyncEngine,
        ttl_seconds: float,
        failure_backoff: float = FAILURE_BACKOFF_SECONDS,
        now: Callable[[], datetime] = _utcnow,
        metrics: Metrics | None = None,
    ) -> None:
        self.provider = provider
        self.metrics = metrics or Metrics()
        self.source = provider.name
        self.store = RateStore(engine, provider.name)
        self.ttl = timedelta(seconds=ttl_seconds)
        self.failure_backoff = failure_backoff
        self._now = now
        self._latest: Rate | None = None
        self._days: dict[date, Rate] = {}
        self._unpublished: set[date] = set()
        self._flight = SingleFlight()
        self._down_until = 0.0
        self.upstream_calls = 0
        # Moves whenever a rate is handed out that is not the fresh one held in memory
        # (a stale rate, or a latest rate that had to be loaded): an answer computed
        # while it moved may hold a rate about to change, and is not kept (app/answers).
        self.unsettled = 0

    def today(self) -> date:
        return self._now().date()

    # --- latest ----------------------------------------------------------------------------

    async def latest(self, *, refresh: bool = False) -> Rate:
        """The current rate: fresh for FX_CACHE_TTL_SECONDS, stale if the provider is down,
        503 `fx_unavailable` if no rate was ever known."""
        cached = self._latest
        if not refresh and cached is not None and self._fresh(cached):
            self.metrics.fx_cache("latest", "memory")
            return cached
        self.unsettled += 1
        return await self._flight.run(("latest", refresh), lambda: self._load_latest(refresh))

    async def _load_latest(self, refresh: bool) -> Rate:
        stored = await self.store.latest()
        if not refresh:
            if stored is not None and self._fresh(stored):
                self.metrics.fx_cache("latest", "table")
                self._latest = stored
                return stored
            if time.monotonic() < self._down_until:
                self.metrics.fx_cache("latest", None)
                return self._stale(stored)
        # One process asks the provider; the others wait on the lock, then read its rate.
        async with self.store.locked("latest") as store:
            if not refresh:
                stored = await store.latest()
                if stored is not None and self._fresh(stored):
                    self.metrics.fx_cache("latest", "table")
                    self._latest = stored
                    return stored
                self.metrics.fx_cache("latest", None)
            try:
                quote = await self._upstream("latest", self.provider.latest)
            except FxProviderError as exc:
                known = stored or self._latest
                log.warning(
                    "fx: %s failed (%s); %s",
                    self.source,
                    exc,
                    "serving the last known rate" if known else "no rate was ever known",
                )
                self._down_until = time.monotonic() + self.failure_backoff
                return self._stale(known)
            rate = Rate(quote.rate, quote.as_of, self._now(), self.source)
            await store.save(RateKind.LATEST, rate.fetched_at.date(), quote, rate.fetched_at)
        self._latest = rate
        self._down_until = 0.0
        return rate

    def _fresh(self, rate: Rate) -> bool:
        return self._now() - rate.fetched_at < self.ttl

    def current(self) -> tuple[Rate | None, date]:
        """What an answer's rates depend on, without asking anyone: the latest rate held
        in memory while it is fresh (None otherwise), and today (days from today on
        convert at the latest rate; earlier days' rates never change once stored)."""
        cached = self._latest
        return (cached if cached is not None and self._fresh(cached) else None), self.today()

    def _stale(self, rate: Rate | None) -> Rate:
        self.unsettled += 1
        self.metrics.fx_fallback(self.source, "unavailable" if rate is None else "stale")
        if rate is None:
            raise FxUnavailable(
                f"No {self.source} rate is available and none was ever stored;"
                " answers in USD cannot be given (BRL answers still work).",
                details={"source": self.source},
            )
        return dataclasses.replace(rate, stale=True)

    # --- historical ------------------------------------------------------------------------

    async def on(self, day: date) -> Rate:
        """The rate of `day`, or of the latest earlier published day (a weekend takes
        Friday's). Today and later take the current rate: a day's rate is only final once
        the day is over."""
        if day >= self.today():
            return await self.latest()
        cached = self._days.get(day)
        if cached is not None:
            self.metrics.fx_cache("historical", "memory")
            return cached
        return await self._flight.run(("on", day), lambda: self._resolve(day))

    async def _resolve(self, day: date) -> Rate:
        stored = await self.store.on_day(day)
        if stored is not None:
            self.metrics.fx_cache("historical", "table")
            self._days[day] = stored
            return stored
        # As for the latest rate: one process asks, the others read what it stored.
        async with self.store.locked(f"historical:{day.isoformat()}") as store:
            stored = await store.on_day(day)
            if stored is not None:
                self.metrics.fx_cache("historical", "table")
                self._days[day] = stored
                return stored
            self.metrics.fx_cache("historical", None)
            try:
                for back in range(min(LOOKBACK_DAYS, (day - date.min).days) + 1):
                    published = await self._published(day - timedelta(days=back), store)
                    if published is not None:
                        rate = dataclasses.replace(published, fetched_at=self._now())
                        await store.save(RateKind.HISTORICAL, day, _quote(rate), rate.fetched_at)
                        self._days[day] = rate
                        return rate
            except FxProviderError as exc:
                log.warning("fx: %s failed for %s (%s)", self.source, day, exc)
                return self._stale(await store.nearest(day))
        raise RateNotFound(
            f"{self.source} has no rate on or within {LOOKBACK_DAYS} days before {day}.",
            details={"date": day.isoformat(), "source": self.source},
        )

    async def _published(self, day: date, store: RateStore) -> Rate | None:
        """What the provider published for `day` itself (None: nothing), asked once.
        `store` is the caller's locked one: its connection saves the day's rate."""
        if day in self._unpublished:
            return None
        known = self._days.get(day)
        if known is not None and known.as_of == day:
            return known
        return await self._flight.run(("published", day), lambda: self._ask(day, store))

    async def _ask(self, day: date, store: RateStore) -> Rate | None:
        quote = await self._upstream("historical", lambda: self.provider.historical(day))
        if quote is None:
            self._unpublished.add(day)
            return None
        rate = Rate(quote.rate, quote.as_of, self._now(), self.source)
        # The day's own rate: kept for the days after it that have none.
        self._days.setdefault(day, rate)
        await store.save(RateKind.HISTORICAL, day, quote, rate.fetched_at)
        return rate

    async def _upstream(self, call: str, fetch: Callable[[], Awaitable[T]]) -> T:
        """One provider call (its retries included), counted and timed."""
        self.upstream_calls += 1
        started = time.perf_counter()
        try:
            result = await fetch()
        except Exception as exc:
            seconds = time.perf_counter() - started
            self.metrics.fx_call(self.source, call, "error", seconds, _error_kind(exc))
            raise
        outcome = "ok" if result is not None else "unpublished"
        self.metrics.fx_call(self.source, call, outcome, time.perf_counter() - started)
        return result

    async def conversion(self, mode: FxMode, days: Iterable[date] = ()) -> Conversion:
        """What an answer in `mode` converts with; `days` are the order dates it covers."""
        if mode is FxMode.LATEST:
            return Conversion(mode, self.source, latest=await self.latest())
        return Conversion(mode, self.source, by_day=await self.for_days(days))

    async def for_days(self, days: Iterable[date]) -> dict[date, Rate]:
        """Rates for many days (order_date mode): one provider call per distinct day
        not yet known, a few at a time."""
        distinct = sorted(set(days))
        gate = asyncio.Semaphore(DAYS_IN_FLIGHT)

        async def one(day: date) -> Rate:
            async with gate:
                return await self.on(day)

        rates = await asyncio.gather(*(one(day) for day in distinct))
        return dict(zip(distinct, rates, strict=True))


def build(
    settings: Settings,
    *,
    http: httpx.AsyncClient,
    engine: AsyncEngine,
    metrics: Metrics | None = None,
) -> FxService:
    """The FX service that the settings ask for, on the lifespan's HTTP client."""
    provider: Provider
    if settings.fx_provider is FxProvider.FREECURRENCYAPI:
        assert settings.fx_api_key is not None  # Settings refuses the provider without it
        provider = FreeCurrencyApi(
            http, base_url=str(settings.fx_api_url), api_key=settings.fx_api_key.get_secret_value()
        )
    else:
        provider = Ecb()
    return FxService(
        provider=provider,
        engine=engine,
        ttl_seconds=settings.fx_cache_ttl_seconds,
        metrics=metrics,
    )
