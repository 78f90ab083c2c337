"""Readers alongside a large upload: no errors, and every answer shows all of the
upload or none of it.

In `make test` the upload is 100,000 orders under 20 readers. The soak run is the same
test at full size, 1,000,000 orders under 50 readers for 60 s:

    ORDERLENS_SOAK=1 .venv/bin/python -m pytest tests/reliability/test_concurrency.py -s

It prints p50/p99 per endpoint (docs/RELIABILITY.md records a run).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from dataclasses import dataclass, field

import httpx
import pytest

from tests.conftest import PRODUCTS
from tests.helpers import upload

SOAK = os.environ.get("ORDERLENS_SOAK") == "1"
ORDERS = 1_000_000 if SOAK else 100_000
READERS = 50 if SOAK else 20
SECONDS = 60.0 if SOAK else 0.0  # 0: as long as the upload takes, plus a moment

READS = [
    "/kpis",
    "/insights/average-ticket",
    "/insights/daily-revenue?limit=100",
    "/insights/top-growth?limit=10",
    "/insights/top-growth?limit=10&basis=previous_sale",
    "/orders?limit=100",
    "/orders?format=csv&start=2024-06-01&end=2024-06-01",  # one day: about 1/336 of it
    "/uploads?limit=10",
    "/exports/kpi_product_orders.csv",
]
TOTALS = "/insights/average-ticket"


@dataclass
class Readings:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    totals: set[tuple[int, str]] = field(default_factory=set)

    def table(self) -> str:
        lines = ["| endpoint | requests | p50 ms | p99 ms |", "|---|---|---|---|"]
        for path, seconds in sorted(self.latencies.items()):
            ms = sorted(s * 1000 for s in seconds)
            p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
            lines.append(f"| `{path}` | {len(ms)} | {statistics.median(ms):.1f} | {p99:.1f} |")
        return "\n".join(lines)


async def _reader(
    client: httpx.AsyncClient, start: int, stop: asyncio.Event, out: Readings
) -> None:
    turn = start
    while not stop.is_set():
        path = READS[turn % len(READS)]
        turn += 1
        began = time.perf_counter()
        try:
            response = await client.get(path)
        except httpx.HTTPError as exc:
            out.errors.append(f"{path}: {type(exc).__name__}")
            continue
        out.latencies.setdefault(path.split("?")[0], []).append(time.perf_counter() - began)
        if response.status_code != 200:
            out.errors.append(f"{path}: {response.status_code} {response.text[:200]}")
        elif path == TOTALS:
            body = response.json()
            out.totals.add((body["orders"], body["revenue_brl"]))


def _orders_file(first_id: int, n: int) -> bytes:
    days = [f"2024-{m:02d}-{d:02d}" for m in range(1, 13) for d in range(1, 29)]
    return (
        "id,product_id,quantity,created_date\n"
        + "".join(
            f"{i},{1 + i % 3},{1 + i % 5},{days[i % len(days)]}\n"
            for i in range(first_id, first_id + n)
        )
    ).encode()


@pytest.mark.timeout(900)
async def test_readers_see_all_of_an_upload_or_none_and_never_fail(live: str) -> None:
    # Idle connections expire before uvicorn's keep-alive timeout (5 s) closes them, or a
    # reused one may meet the server's close (a client-side ReadError, not an answer).
    limits = httpx.Limits(max_connections=READERS + 2, keepalive_expiry=4.0)
    async with httpx.AsyncClient(base_url=live, timeout=120, limits=limits) as client:
        assert (await upload(client, "products", PRODUCTS)).status_code == 201
        assert (await upload(client, "orders", _orders_file(1, 1000))).status_code == 201
        before = (await client.get(TOTALS)).json()

        readings = Readings()
        stop = asyncio.Event()
        readers = [asyncio.create_task(_reader(client, i, stop, readings)) for i in range(READERS)]
        started = time.monotonic()
        await asyncio.sleep(1.0)
        report = await upload(client, "orders", _orders_file(1001, ORDERS))
        upload_seconds = time.monotonic() - started - 1.0
        assert report.status_code == 201, report.text
        assert report.json()["rows_inserted"] == ORDERS
        await asyncio.sleep(max(1.0, SECONDS - (time.monotonic() - started)))
        stop.set()
        await asyncio.gather(*readers)
        after = (await client.get(TOTALS)).json()

    print(f"\n{ORDERS:,} orders uploaded in {upload_seconds:.1f} s under {READERS} readers")
    print(readings.table())
    assert readings.errors == []
    assert before["orders"] == 1000
    assert after["orders"] == 1000 + ORDERS
    # Readers only ever saw the state before the upload or the one after it.
    assert readings.totals == {
        (before["orders"], before["revenue_brl"]),
        (after["orders"], after["revenue_brl"]),
    }
