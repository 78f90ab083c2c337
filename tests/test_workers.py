"""`orderlens serve --workers 2` for real: a subprocess on a free 127.0.0.1 port, FX from
a fake freecurrencyapi on another loopback port. The two workers behave as one service:
one provider call for a burst of cold requests, `/metrics` summing both, uploads sent to
both still serial-equivalent.

Which worker answers a connection is the kernel's choice, so each check runs in rounds
until both workers took part (prometheus_client's per-process files say which did)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import URL, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app import db
from tests.conftest import API_KEY, create_database, drop_database
from tests.fx.fake import FX_KEY
from tests.fx.fake_http import FakeFxServer, fake_fx_server
from tests.helpers import free_port
from tests.oracles import RECOMPUTED, STORED

WORKERS = 2
TTL = 4  # seconds a rate stays fresh: a round after it expires is cold again
ROUNDS = 5  # rounds to wait for the kernel to hand connections to both workers
BURST = 24
UPLOADS = 3  # concurrent uploads per round
STARTUP_SECONDS = 60
SEED = {
    "products": b"id,name,category,price\n1001,Seed,Seeds,10.00\n",
    "orders": b"id,product_id,quantity,created_date\n900001,1001,3,2024-11-30\n",
}


@dataclass
class Service:
    base: str
    metrics_dir: Path
    engine: AsyncEngine
    log: Path


def served_by_worker(folder: Path, route: str, method: str = "GET") -> dict[int, float]:
    """Requests to `route` each worker counted, from its own metrics file."""
    counts: dict[int, float] = {}
    for path in folder.glob("counter_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        for metric in MultiProcessCollector.merge([str(path)], accumulate=True):  # type: ignore[no-untyped-call]
            for sample in metric.samples:
                if (
                    sample.name == "orderlens_http_requests_total"
                    and sample.labels.get("route") == route
                    and sample.labels.get("method") == method
                ):
                    counts[pid] = counts.get(pid, 0) + sample.value
    return counts


def grew(before: dict[int, float], after: dict[int, float]) -> set[int]:
    return {pid for pid, n in after.items() if n > before.get(pid, 0)}


async def scraped_total(base: str, route: str, method: str = "GET") -> float:
    """`orderlens_http_requests_total` for `route`, as one scrape of /metrics says."""
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        body = (await http.get("/metrics")).text
    total = 0.0
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if (
                sample.name == "orderlens_http_requests_total"
                and sample.labels.get("route") == route
                and sample.labels.get("method") == method
            ):
                total += sample.value
    return total


async def settled(check: Callable[[], Awaitable[bool]], seconds: float = 5) -> bool:
    """Poll `check` until true (a worker counts a request just after answering it)."""
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def fresh_get(base: str, path: str, **kwargs: Any) -> httpx.Response:
    """GET on a connection of its own, so that the kernel picks a worker for it."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        return await http.get(path, **kwargs)


async def fresh_post(base: str, path: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        return await http.post(path, headers={"X-API-Key": API_KEY}, **kwargs)


@pytest.fixture(scope="module")
def fx_server() -> Iterator[FakeFxServer]:
    # Slow enough that a burst of requests all arrive while the first call is under way.
    with fake_fx_server(delay=0.5) as fake:
        yield fake


def _wait_for_workers(process: subprocess.Popen[bytes], log: Path, base: str) -> None:
    """Until every worker has started its app and the port answers (bounded)."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"orderlens serve exited {process.returncode}:\n{log.read_text()}")
        if log.read_text().count("Application startup complete") >= WORKERS:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        time.sleep(0.1)
    pytest.fail(f"the workers did not start in {STARTUP_SECONDS}s:\n{log.read_text()}")


def start_serve(data_dir: Path, env: dict[str, str]) -> tuple[str, subprocess.Popen[bytes], Path]:
    """`orderlens serve --workers 2` on a free port: its base URL, process and log."""
    env = {**env, "ORDERLENS_DATA_DIR": str(data_dir), "LOG_LEVEL": "INFO"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    port = free_port()
    log = data_dir / "serve.log"
    command = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(WORKERS)]
    with log.open("wb") as out:
        # Its own session: if it ever hangs, its whole group (the workers) is killed.
        process = subprocess.Popen(
            command, cwd=data_dir, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    return f"http://127.0.0.1:{port}", process, log


async def stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, as a supervisor would; the exit status (killed after 20 s)."""
    process.send_signal(signal.SIGTERM)
    try:
        return await asyncio.to_thread(process.wait, 20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        await asyncio.to_thread(process.wait, 5)
        raise


def worker_pids(parent: int) -> list[int]:
    """The worker processes uvicorn spawned under `parent`."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == parent and b"spawn_main" in cmdline:
            pids.append(int(stat.parent.name))
    return pids


@pytest.fixture(scope="module")
async def service(
    pg_server: URL, tmp_path_factory: pytest.TempPathFactory, fx_server: FakeFxServer
) -> AsyncIterator[Service]:
    url = await create_database(pg_server)
    data_dir = tmp_path_factory.mktemp("workers")
    env = {
        **os.environ,
        "DATABASE_URL": url.render_as_string(hide_password=False),
        "API_KEY": API_KEY,
        "FX_PROVIDER": "freecurrencyapi",
        "FX_API_KEY": FX_KEY,
        "FX_API_URL": fx_server.url,
        "FX_CACHE_TTL_SECONDS": str(TTL),
        "READ_ACCESS": "public",
    }
    # Counts of an earlier run: cleaned at start, or they would add up.
    (data_dir / "prometheus").mkdir()
    (data_dir / "prometheus" / "counter_999999.db").write_bytes(b"stale")
    base, process, log = start_serve(data_dir, env)
    engine = db.create_engine(url, pool_size=2)
    try:
        await asyncio.to_thread(_wait_for_workers, process, log, base)
        assert not (data_dir / "prometheus" / "counter_999999.db").exists()
        # A few orders, so that /kpis has USD figures and needs the rate.
        for kind, content in SEED.items():
            seeded = await fresh_post(base, f"/uploads/{kind}", files={"file": ("s.csv", content)})
            assert seeded.status_code == 201, seeded.text
        yield Service(base, data_dir / "prometheus", engine, log)
    finally:
        await stop(process)
        await engine.dispose()
        await drop_database(pg_server, url)


class TestSeveralWorkers:
    async def test_a_cold_burst_makes_one_provider_call_across_workers(
        self, service: Service, fx_server: FakeFxServer
    ) -> None:
        for _ in range(ROUNDS):
            calls = fx_server.count("/v1/latest")
            before = served_by_worker(service.metrics_dir, "/kpis")
            answers = await asyncio.gather(
                *(fresh_get(service.base, "/kpis") for _ in range(BURST))
            )
            assert {a.status_code for a in answers} == {200}, answers[0].text
            assert {a.json()["fx"]["rate"] for a in answers} == {"0.184965"}
            assert fx_server.count("/v1/latest") == calls + 1

            async def counted(before: dict[int, float] = before) -> bool:
                after = served_by_worker(service.metrics_dir, "/kpis")
                return sum(after.values()) - sum(before.values()) == BURST

            assert await settled(counted)
            if len(grew(before, served_by_worker(service.metrics_dir, "/kpis"))) == WORKERS:
                return
            await asyncio.sleep(TTL + 0.2)  # the rate expires: the next burst is cold too
        pytest.fail(f"in {ROUNDS} bursts the kernel never gave both workers a /kpis request")

    async def test_metrics_sum_every_worker(self, service: Service) -> None:
        sent = 0
        for _ in range(ROUNDS):
            before = served_by_worker(service.metrics_dir, "/healthz")
            answers = await asyncio.gather(
                *(fresh_get(service.base, "/healthz") for _ in range(BURST))
            )
            assert {a.status_code for a in answers} == {200}
            sent += BURST

            async def all_counted(expected: int = sent) -> bool:
                return await scraped_total(service.base, "/healthz") == expected

            # Whichever worker answers the scrape, it counts the other's requests too.
            assert await settled(all_counted), await scraped_total(service.base, "/healthz")
            assert await scraped_total(service.base, "/healthz") == sent
            if len(grew(before, served_by_worker(service.metrics_dir, "/healthz"))) == WORKERS:
                return
        pytest.fail(f"in {ROUNDS} bursts the kernel never gave both workers a /healthz request")

    async def test_uploads_to_both_workers_are_serial_equivalent(self, service: Service) -> None:
        products = 200
        orders = 20_000
        catalog = "id,name,category,price\n" + "".join(
            f"{i},Product {i},Category {i % 7},{i % 50}.25\n" for i in range(1, products + 1)
        )
        created = await fresh_post(
            service.base, "/uploads/products", files={"file": ("p.csv", catalog.encode())}
        )
        assert created.status_code == 201, created.text

        def orders_file(quantity: int) -> bytes:
            rows = (
                f"{i},{i % products + 1},{quantity},2024-12-{i % 28 + 1:02d}\n"
                for i in range(1, orders + 1)
            )
            return ("id,product_id,quantity,created_date\n" + "".join(rows)).encode()

        def posts() -> dict[int, float]:
            """Upload requests per worker (one route per kind)."""
            counts: dict[int, float] = {}
            for route in ("/uploads/products", "/uploads/orders"):
                for pid, n in served_by_worker(service.metrics_dir, route, "POST").items():
                    counts[pid] = counts.get(pid, 0) + n
            return counts

        def counted(expected: float) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                return sum(posts().values()) == expected

            return check

        # The seed and the catalog, counted before the rounds start.
        total = len(SEED) + 1
        assert await settled(counted(total)), posts()
        for round_ in range(ROUNDS):
            quantities = tuple(UPLOADS * round_ + n for n in range(1, UPLOADS + 1))
            before = posts()

            async def send(n: int, quantity: int) -> httpx.Response:
                # Staggered: a worker busy with one upload leaves the next connection
                # to the other, while the uploads still overlap.
                await asyncio.sleep(0.05 * n)
                return await fresh_post(
                    service.base,
                    "/uploads/orders",
                    params={"on_conflict": "update"},
                    files={"file": (f"orders-{quantity}.csv", orders_file(quantity))},
                )

            answers = await asyncio.gather(*(send(n, q) for n, q in enumerate(quantities)))
            reports = [a.json() for a in answers]
            assert [a.status_code for a in answers] == [201] * UPLOADS, reports
            # Run in sequence, each upload of a round changes every stored order (the
            # first inserts them, in the first round): its quantity differs from all.
            changed = [r["rows_inserted"] + r["rows_updated"] for r in reports]
            assert changed == [orders] * UPLOADS, reports
            async with service.engine.connect() as conn:
                stored: Any = (
                    await conn.execute(
                        text("SELECT DISTINCT quantity FROM orders WHERE order_id <= :n"),
                        {"n": orders},
                    )
                ).scalars()
                kept = set(stored)
                for name, sql in STORED.items():
                    rows = (await conn.execute(text(sql))).all()
                    assert rows == (await conn.execute(text(RECOMPUTED[name]))).all(), name
            assert len(kept) == 1 and kept <= set(quantities), kept  # one file won, whole

            total += UPLOADS
            assert await settled(counted(total)), (before, posts())
            if len(grew(before, posts())) == WORKERS:
                return
        pytest.fail(f"in {ROUNDS} rounds the kernel never sent the uploads to both workers")

    async def test_a_read_after_an_upload_sees_it_in_every_worker(self, service: Service) -> None:
        # Each worker keeps answers in memory; an upload committed in one must reach the
        # other's next read. Reads are warmed before each upload (so the old answer is
        # kept), then, once its 201 is back, read again on new connections.
        path = "/insights/average-ticket"

        async def orders_seen() -> set[int]:
            answers = await asyncio.gather(*(fresh_get(service.base, path) for _ in range(6)))
            assert all(a.status_code == 200 for a in answers)
            return {a.json()["orders"] for a in answers}

        start = await orders_seen()
        assert len(start) == 1
        expected = start.pop()
        before = served_by_worker(service.metrics_dir, path)
        for round_ in range(ROUNDS * 2):
            await orders_seen()
            order = (
                "id,product_id,quantity,created_date\n"
                f"{5_000_000 + round_},1001,{round_ + 1},2024-11-{round_ % 28 + 1:02d}\n"
            )
            posted = await fresh_post(
                service.base, "/uploads/orders", files={"file": ("o.csv", order.encode())}
            )
            assert posted.status_code == 201, posted.text
            expected += 1
            assert await orders_seen() == {expected}, round_
        assert await settled(
            lambda: _true(len(grew(before, served_by_worker(service.metrics_dir, path))) == 2)
        ), "the kernel never sent the reads to both workers"


async def _true(value: bool) -> bool:
    return value


@pytest.mark.one_server  # the embedded server, whatever server the run uses
class TestEmbeddedServerWithWorkers:
    async def test_the_parent_starts_it_once_and_stops_it_at_exit(self, tmp_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        base, process, log = start_serve(tmp_path, {**env, "API_KEY": API_KEY})
        pgdata = tmp_path / "postgres" / "pgdata"
        try:
            await asyncio.to_thread(_wait_for_workers, process, log, base)
            workers = worker_pids(process.pid)
            assert len(workers) == WORKERS
            for pid in workers:
                # Each worker reaches the parent's server through its socket folder.
                environ = (await asyncio.to_thread(Path(f"/proc/{pid}/environ").read_bytes)).split(
                    b"\0"
                )
                [url] = [e for e in environ if e.startswith(b"DATABASE_URL=")]
                assert str(pgdata).encode() in url.replace(b"%2F", b"/")
            assert (pgdata / "postmaster.pid").exists()
            ready = await fresh_get(base, "/readyz")
            assert ready.status_code == 200, ready.text
        finally:
            assert await stop(process) == 0, log.read_text()
        assert not (pgdata / "postmaster.pid").exists(), "the embedded server still runs"
