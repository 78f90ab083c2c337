"""Where BRL→USD rates come from: freecurrencyapi over HTTP, or the ECB reference rates
shipped in the `currencyconverter` package (offline). Both behind one small interface."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

log = logging.getLogger(__name__)

BASE, QUOTE = "BRL", "USD"
RATE_PLACES = Decimal("1e-12")
# A day without a published rate takes the latest earlier one, this many days back at most.
LOOKBACK_DAYS = 10


@dataclass(frozen=True)
class Quote:
    rate: Decimal  # USD per BRL
    as_of: date  # the day the rate was published for


class FxProviderError(Exception):
    """The provider did not give a rate (after retries, where retrying makes sense)."""


class FxTransientError(FxProviderError):
    """Timeouts, 429 and 5xx: worth another try."""


class FxConfigurationError(FxProviderError):
    """401, 403, 422: the key, the plan or the request is wrong; retrying cannot help."""


class Provider(Protocol):
    name: str

    async def latest(self) -> Quote: ...

    async def historical(self, day: date) -> Quote | None:
        """The rate published for `day` itself, or None if none was (weekends)."""
        ...


def _valid_rate(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        raise FxProviderError("the provider sent no usable rate")
    try:
        rate = Decimal(value)
    except InvalidOperation:
        raise FxProviderError("the provider sent no usable rate") from None
    if not rate.is_finite() or rate <= 0:
        raise FxProviderError("the provider sent no usable rate")
    return rate.quantize(RATE_PLACES)


class FreeCurrencyApi:
    """freecurrencyapi.com: the key travels in the `apikey` header, never in a URL."""

    name = "freecurrencyapi"

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: str,
        deadline: float = 5.0,
        attempt_timeout: float = 2.0,
        attempts: int = 4,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._deadline = deadline
        self._attempt_timeout = attempt_timeout
        self._attempts = attempts

    async def latest(self) -> Quote:
        body = await self._get("latest", {"base_currency": BASE, "currencies": QUOTE})
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise FxProviderError("the provider's answer has no data")
        return Quote(_valid_rate(data.get(QUOTE)), datetime.now(UTC).date())

    async def historical(self, day: date) -> Quote | None:
        key = day.isoformat()
        params = {"date": key, "base_currency": BASE, "currencies": QUOTE}
        body = await self._get("historical", params)
        data = body.get("data") if isinstance(body, dict) else None
        block = data.get(key) if isinstance(data, dict) else None
        if not isinstance(block, dict) or QUOTE not in block:
            return None  # nothing published for that day
        return Quote(_valid_rate(block[QUOTE]), day)

    async def _get(self, path: str, params: dict[str, str]) -> Any:
        """GET with bounded retries inside a total deadline; errors carry no key."""
        try:
            async with asyncio.timeout(self._deadline):
                async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(self._attempts) | stop_after_delay(self._deadline),
                    wait=wait_exponential_jitter(multiplier=0.1, max=1.0, jitter=0.1),
                    retry=retry_if_exception_type(FxTransientError),
                    reraise=True,
                ):
                    with attempt:
                        return await self._once(path, params)
        except TimeoutError:
            raise FxTransientError(
                f"{self.name} {path}: no answer within {self._deadline} s"
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _once(self, path: str, params: dict[str, str]) -> Any:
        try:
            response = await self._http.get(
                f"{self._base_url}/{path}",
                params=params,
                headers={"apikey": self._api_key},
                timeout=self._attempt_timeout,
            )
        except httpx.TimeoutException:
            log.warning("fx %s %s: timed out", self.name, path)
            raise FxTransientError(f"{self.name} {path}: timed out") from None
        except httpx.HTTPError as exc:
            log.warning("fx %s %s: %s", self.name, path, type(exc).__name__)
            raise FxTransientError(f"{self.name} {path}: {type(exc).__name__}") from None
        status = response.status_code
        if status in (401, 403, 422):
            log.error("fx %s %s: %s, check FX_API_KEY and the plan", self.name, path, status)
            raise FxConfigurationError(f"{self.name} {path}: HTTP {status}")
        if status == 429 or status >= 500:
            log.warning("fx %s %s: HTTP %s", self.name, path, status)
            raise FxTransientError(f"{self.name} {path}: HTTP {status}")
        if status != 200:
            raise FxProviderError(f"{self.name} {path}: HTTP {status}")
        try:
            return json.loads(response.content, parse_float=Decimal)
        except ValueError:
            raise FxProviderError(f"{self.name} {path}: not JSON") from None


class Ecb:
    """European Central Bank reference rates, offline: BRL→USD as a cross rate via EUR."""

    name = "ecb"

    def __init__(self) -> None:
        self._converter: Any = None
        self._lock = asyncio.Lock()

    async def _rates(self) -> Any:
        async with self._lock:
            if self._converter is None:
                from currency_converter import CurrencyConverter

                # Loading the shipped history takes a moment: not on the event loop.
                self._converter = await asyncio.to_thread(
                    CurrencyConverter, fallback_on_missing_rate=False, fallback_on_wrong_date=False
                )
        return self._converter

    async def latest(self) -> Quote:
        rates = await self._rates()
        last = min(rates.bounds[BASE].last_date, rates.bounds[QUOTE].last_date)
        for back in range(min(LOOKBACK_DAYS, (last - date.min).days) + 1):
            quote = self._quote(rates, last - timedelta(days=back))
            if quote is not None:
                return quote
        raise FxProviderError("the ECB data has no recent BRL/USD rate")

    async def historical(self, day: date) -> Quote | None:
        return self._quote(await self._rates(), day)

    @staticmethod
    def _quote(rates: Any, day: date) -> Quote | None:
        from currency_converter import RateNotFoundError

        try:
            # 1 EUR in each currency, as published (repr gives back the published digits).
            usd = Decimal(repr(rates.convert(1, "EUR", QUOTE, date=day)))
            brl = Decimal(repr(rates.convert(1, "EUR", BASE, date=day)))
        except RateNotFoundError:
            return None
        return Quote((usd / brl).quantize(RATE_PLACES), day)
