"""Alerts through Apprise (issue 28, item 3): each event recorded once at GET /alerts and
sent to ALERT_URLS, here a receiver on 127.0.0.1 reached by Apprise's real `json://`
plugin; a delivery that fails never fails the work that raised it."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import http.server
import json
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import URL, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.alerts.service import Alerter, Event, forecast_events
from app.main import create_app
from tests.conftest import API_KEY, make_settings, open_client
from tests.helpers import upload

PRODUCTS = "id,name,category,price\n1,Lamp,Home,10.50\n2,Desk,Office,200.00\n"
START = dt.date(2024, 11, 1)


class Receiver:
    """A webhook on 127.0.0.1 that keeps what it is sent."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        received = self.received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_port}/hooks/orderlens"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


async def _client(
    database_url: URL, tmp_path: Path, **settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(database_url, tmp_path, **settings))
    async for client in open_client(app):
        yield client


@pytest.fixture
async def api(
    database_url: URL, tmp_path: Path, clean_db: None, receiver: Receiver
) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(
        database_url,
        tmp_path,
        alert_urls=receiver.url,
        alert_spike_min_units=5,
        freshness_sla_seconds=3600,
    ):
        yield client


async def alerts(api: httpx.AsyncClient, count: int, *, sent: bool = True) -> list[dict[str, Any]]:
    """The alerts, newest first, once there are `count` (and each was tried, if `sent`)."""
    for _ in range(100):
        items: list[dict[str, Any]] = (await api.get("/alerts")).json()["items"]
        if len(items) >= count and (not sent or all(i["sent_at"] for i in items)):
            return items
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {count} alerts, have {items}")


def _orders(rows: list[tuple[int, int, int, dt.date]]) -> str:
    return "id,product_id,quantity,created_date\n" + "".join(
        f"{i},{p},{q},{d.isoformat()}\n" for i, p, q, d in rows
    )


async def test_a_failed_upload_is_told_once_and_delivered(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    await upload(api, "products", PRODUCTS)
    bad = "id,product_id,quantity,created_date\n1,1,0,2024-11-01\n2,1,1,2024-11-01\n"
    response = await upload(api, "orders", bad, params={"max_rejected_share": "0.1"})
    assert response.status_code == 422, response.text
    upload_id = response.json()["error"]["details"]["upload_id"]
    [alert] = await alerts(api, 1)
    assert alert["event"] == "upload_failed" and alert["subject"] == f"upload {upload_id}"
    assert "too_many_rejects" in alert["message"]
    assert alert["delivered"] is True and alert["error"] is None
    [sent] = receiver.received
    assert sent["title"] == f"Orderlens: upload failed (upload {upload_id})"
    assert sent["message"] == alert["message"]


async def test_a_demand_spike_against_the_28_days_before(api: httpx.AsyncClient) -> None:
    """Product 1 sold 1 a day for 28 days, then 6 (≥ 3 × 1 and ≥ 5): a spike. Product 2
    sold 2 a day, then 5 (not 3 × 2): none. Nothing in the first 28 days: a product's
    first month has no mean to be measured against."""
    await upload(api, "products", PRODUCTS)
    days = [START + dt.timedelta(days=n) for n in range(28)]
    history = [(n + 1, 1, 1, d) for n, d in enumerate(days)]
    history += [(100 + n, 2, 2, d) for n, d in enumerate(days)]
    assert (await upload(api, "orders", _orders(history))).status_code == 201
    spike_day = START + dt.timedelta(days=28)
    new = [(500, 1, 6, spike_day), (501, 2, 5, spike_day)]
    assert (await upload(api, "orders", _orders(new))).status_code == 201
    [alert] = await alerts(api, 1)
    assert alert["event"] == "demand_spike"
    assert alert["subject"] == f"product 1 on {spike_day.isoformat()}"
    assert "6 units" in alert["message"] and "6.0× its 28-day mean of 1.00" in alert["message"]
    # The same day raised again (another upload adds to it): not told twice.
    assert (await upload(api, "orders", _orders([(502, 1, 3, spike_day)]))).status_code == 201
    await asyncio.sleep(0.3)
    assert len(await alerts(api, 1)) == 1


async def test_stale_data_and_consumers_are_told_once_per_staleness(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await upload(api, "products", PRODUCTS)
    assert (
        await api.get("/exports/products.parquet", params={"consumer": "wh"})
    ).status_code == 200
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE uploads SET finished_at = now() - interval '2 hours'"))
        await conn.execute(text("UPDATE syncs SET finished_at = now() - interval '3 hours'"))
    for _ in range(3):  # every read of the figures finds them stale: told once
        assert (await api.get("/freshness")).json()["stale"] is True
        await api.get("/metrics")
    told = await alerts(api, 2)
    assert sorted((a["event"], a["subject"]) for a in told) == [
        ("consumer_stale", "wh"),
        ("data_stale", "data"),
    ]
    await asyncio.sleep(0.3)
    assert len(await alerts(api, 2)) == 2
    # Fresh again, then stale again: a new staleness, told again.
    await upload(api, "products", PRODUCTS)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE uploads SET finished_at = now() - interval '5 hours'"))
    await api.get("/freshness")
    newest = await alerts(api, 3)
    assert newest[0]["event"] == "data_stale"


async def test_a_receiver_that_is_gone_fails_nothing_but_the_delivery(
    database_url: URL, tmp_path: Path, clean_db: None
) -> None:
    closed = Receiver()
    closed.close()  # nothing listens there now
    async for api in _client(database_url, tmp_path, alert_urls=closed.url):
        await upload(api, "products", PRODUCTS)
        bad = "id,product_id,quantity,created_date\n1,1,0,2024-11-01\n"
        response = await upload(api, "orders", bad, params={"max_rejected_share": "0.5"})
        assert response.status_code == 422  # the upload's own answer, as without alerts
        [alert] = await alerts(api, 1)
        assert alert["delivered"] is False and alert["error"]
        assert (await upload(api, "products", PRODUCTS)).status_code == 201


async def test_without_alert_urls_alerts_are_only_recorded(
    database_url: URL, tmp_path: Path, clean_db: None
) -> None:
    async for api in _client(database_url, tmp_path):
        await upload(api, "products", PRODUCTS)
        bad = "id,product_id,quantity,created_date\n1,1,0,2024-11-01\n"
        await upload(api, "orders", bad, params={"max_rejected_share": "0.5"})
        [alert] = await alerts(api, 1, sent=False)
        assert alert["sent_at"] is None and alert["delivered"] is False


def _level(model: str, scope: str, mae: float | None, level: str = "category") -> dict[str, Any]:
    return {"level": level, "model": model, "scope": scope, "mae": mae}


@pytest.mark.parametrize(
    ("served", "naive", "told"),
    [(1.20, 1.00, True), (0.90, 1.00, False), (1.00, 1.00, False), (None, 1.00, False)],
)
def test_a_forecast_that_loses_to_seasonal_naive_at_category_level(
    served: float | None, naive: float, told: bool
) -> None:
    """Told when the served category forecasts' held-out error is above seasonal naive's;
    the total level's figures, and the other candidates', do not count."""
    accuracy = [
        _level("AutoETS+MinTrace(ols)", "served", served),
        _level("SeasonalNaive", "all", naive),
        _level("AutoETS", "all", 0.1),
        _level("AutoETS+BottomUp", "served", 9.0, level="total"),
        _level("SeasonalNaive", "all", 0.01, level="total"),
    ]
    events = forecast_events(7, None, accuracy)
    assert [e.event for e in events] == (["forecast_lost"] if told else [])
    if told:
        [event] = events
        assert event.subject == "forecast run 7"
        assert "1.200 against 1.000" in event.message
    failed = forecast_events(8, {"code": "forecast_failed", "message": "boom"}, accuracy)
    assert [(e.event, e.message) for e in failed] == [
        ("forecast_failed", "Forecast run 8 failed: forecast_failed: boom")
    ]


async def test_a_step_outside_the_service_tells_its_failure_once(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """POST /alerts: a sync or a pipeline step that failed, told with the write key; the
    same failure told again is not sent again."""
    body = {"subject": "sync", "message": "loading into duckdb failed: disk full", "key": "run-1"}
    assert (await api.post("/alerts", json=body)).status_code == 401
    first = await api.post("/alerts", json=body, headers={"X-API-Key": API_KEY})
    assert first.status_code == 202 and isinstance(first.json()["alert_id"], int)
    again = await api.post("/alerts", json=body, headers={"X-API-Key": API_KEY})
    assert again.json() == {"alert_id": None}
    [alert] = await alerts(api, 1)
    assert (alert["event"], alert["subject"], alert["delivered"]) == ("step_failed", "sync", True)
    assert [r["message"] for r in receiver.received] == [body["message"]]
    bad = await api.post(
        "/alerts", json={"subject": "", "message": "x"}, headers={"X-API-Key": API_KEY}
    )
    assert bad.status_code == 422
    # Text PostgreSQL cannot store (a NUL, which Schemathesis sent): 422, never a 500.
    for field in ("subject", "message", "key"):
        nul = {**body, field: "a\x00b"}
        bad = await api.post("/alerts", json=nul, headers={"X-API-Key": API_KEY})
        assert (bad.status_code, bad.json()["error"]["code"]) == (422, "validation_error")


async def test_an_event_raised_twice_is_recorded_and_sent_once(
    engine: AsyncEngine, clean_db: None, receiver: Receiver
) -> None:
    """The dedupe itself, without the background: the second raise of the same event
    finds it recorded, inserts nothing and sends nothing."""
    alerter = Alerter(engine, (receiver.url,), timeout=10)
    event = Event("step_failed", "sync", "disk full", key="run-1")
    first = await alerter.raise_(event)
    assert isinstance(first, int)
    assert await alerter.raise_(event) is None
    assert await alerter.raise_(Event("step_failed", "sync", "disk full", key="run-2"))
    await alerter.close()  # the sends in flight end
    async with engine.connect() as conn:
        keys = (await conn.execute(text("SELECT dedupe_key FROM alerts ORDER BY 1"))).all()
    assert [k for (k,) in keys] == ["step_failed:run-1", "step_failed:run-2"]
    assert [r["message"] for r in receiver.received] == ["disk full", "disk full"]


async def test_a_step_told_while_the_database_is_gone_is_503_not_told_before(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """POST /alerts answers `alert_id: null` only for a failure told before; one that
    could not be recorded is the database's 503."""
    import asyncpg

    from app.alerts import service

    @contextlib.asynccontextmanager
    async def gone(_: object) -> AsyncIterator[None]:
        raise asyncpg.exceptions.CannotConnectNowError("the database system is shutting down")
        yield  # pragma: no cover

    monkeypatch.setattr(service, "_connection", gone)
    body = {"subject": "sync", "message": "disk full"}
    response = await api.post("/alerts", json=body, headers={"X-API-Key": API_KEY})
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "database_unavailable"
