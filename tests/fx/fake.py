"""A fake freecurrencyapi speaking its protocol, behind httpx.MockTransport, so that the
real client code (headers, parameters, retries, timeouts) runs in tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date

import httpx

FX_KEY = "fx-secret-key-123"
# BRL→USD at the rate the assessment's converted file used: what the fakes answer unless told.
ASSESSMENT_RATE = "0.184965"


@dataclass
class FakeFreeCurrencyApi:
    """`mode`: ok | fail500 | fail429 | fail401 | hang | garbage. `rates` by ISO date for
    /historical (missing days have no data, as on weekends)."""

    latest_rate: str = ASSESSMENT_RATE
    rates: dict[str, str] = field(default_factory=dict)
    mode: str = "ok"
    delay: float = 0.0
    calls: list[httpx.Request] = field(default_factory=list)
    fail_times: int = 0  # fail this many calls first (with `mode`), then answer ok

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        failing = self.mode != "ok" and (self.fail_times == 0 or len(self.calls) <= self.fail_times)
        if failing:
            if self.mode == "hang":
                await asyncio.sleep(3600)
            if self.mode == "garbage":
                return httpx.Response(200, content=b"<html>oops</html>")
            status = {"fail500": 500, "fail429": 429, "fail401": 401, "fail422": 422}[self.mode]
            return httpx.Response(status, json={"message": "error"})
        if request.headers.get("apikey") != FX_KEY:
            return httpx.Response(401, json={"message": "Invalid authentication credentials"})
        params = request.url.params
        assert params["base_currency"] == "BRL"
        assert params["currencies"] == "USD"
        path = request.url.path.rsplit("/", 1)[-1]
        # Rates are bare JSON numbers, exactly as the provider writes them.
        if path == "latest":
            return _json(f'{{"data": {{"USD": {self.latest_rate}}}}}')
        if path == "historical":
            day = params["date"]
            date.fromisoformat(day)
            rate = self.rates.get(day)
            return _json(f'{{"data": {{"{day}": {{"USD": {rate}}}}}}}' if rate else '{"data": {}}')
        return httpx.Response(404, json={"message": "not found"})

    def count(self, path: str) -> int:
        return sum(1 for c in self.calls if c.url.path.endswith(path))


def _json(text: str) -> httpx.Response:
    return httpx.Response(200, content=text.encode(), headers={"content-type": "application/json"})
