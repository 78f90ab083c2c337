"""`orderlens serve --workers 2` for real: a subprocess on a free 127.0.0.1 port, FX from
a fake freecurrencyapi on another loopback port. The two workers behave as one service:
one provider call for a burst of cold requests, `/metrics` summing both, uploads sent to
both still serial-equivalent.

Which worker accepts a connection is the kernel's choice; the tests make it theirs
(`only`): every other worker is stopped (SIGSTOP) until the chosen one shows it took the
connection (its answer, its upload's row, its wait on a lock the test holds), then
continued (SIGCONT). A stop lasts that long only, well within the 5 s in which uvicorn's
supervisor expects each worker to answer its health check. Waits are for conditions sure
to come true, with no deadline of their own: pytest-timeout bounds a bug."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import URL, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app import db
from app.fx.cache import FX_LOCK_NAMESPACE, LOCK
from tests.conftest import API_KEY, create_database, drop_database
from tests.fx.fake import FX_KEY
from tests.fx.fake_http import FakeFxServer, fake_fx_server
from tests.helpers import free_port
from tests.oracles import RECOMPUTED, STORED

WORKERS = 2
# Seconds a rate stays fresh: far longer than the moment between one worker's fetch and
# the other's re-read of the table.
TTL = 30
BURST = 24  # cold /kpis requests, half of them sent to each worker
HEALTHZ = 12  # /healthz requests per worker
UPLOADS = 3  # overlapping uploads, taken by the workers in turn
SEED = {
    "products": b"id,name,category,price\n1001,Seed,Seeds,10.00\n",
    "orders": b"id,product_id,quantity,created_date\n900001,1001,3,2024-11-30\n",
}
# The fetch of the latest rate: the transaction-level advisory lock one process holds
# while it asks the provider (app/fx/cache.py), on (namespace, hashtext(name)).
FX_LATEST = {"namespace": FX_LOCK_NAMESPACE, "name": "freecurrencyapi:latest"}
FX_LOCK_WAITERS = """
SELECT count(*) FROM pg_locks
WHERE locktype = 'advisory' AND NOT granted AND classid = :namespace AND objsubid = 2
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


@dataclass
class Service:
    metrics_dir: Path
    engine: AsyncEngine
    log: Path
    process: subprocess.Popen[bytes]
    workers: tuple[int, ...]  # the worker processes' pids
    http: httpx.AsyncClient  # see `client`


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


async def scraped_total(http: httpx.AsyncClient, route: str, method: str = "GET") -> float:
    """`orderlens_http_requests_total` for `route`, as one scrape of /metrics says."""
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


async def until(check: Callable[[], bool | Awaitable[bool]]) -> None:
    """Poll `check` until it holds. Only for conditions sure to come true: no deadline
    (a machine may be slow), pytest-timeout bounds a bug."""
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.02)


def process_state(pid: int) -> str:
    """The state letter of /proc/<pid>/stat: T when stopped."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def ended(pid: int) -> bool:
    """Gone, or a zombie its new parent has not reaped yet."""
    try:
        return process_state(pid) == "Z"
    except FileNotFoundError:
        return True


@contextlib.asynccontextmanager
async def only(service: Service, worker: int) -> AsyncIterator[None]:
    """Every worker but `worker` stopped for the block: a connection made in it can only
    be accepted by `worker`. The block waits for a sign that `worker` took it, and no
    longer: uvicorn's supervisor replaces a worker that misses its 5 s health check."""
    running = set(worker_pids(service.process.pid))
    assert running == set(service.workers), (
        f"the supervisor replaced a worker ({sorted(service.workers)} now {sorted(running)}):"
        f" was one stopped too long?\n{service.log.read_text()}"
    )
    others = [pid for pid in service.workers if pid != worker]
    for pid in others:
        os.kill(pid, signal.SIGSTOP)
    try:
        # The signal is asynchronous: stopped for sure before any connection is made.
        await until(lambda: all(process_state(pid) == "T" for pid in others))
        yield
    finally:
        for pid in others:
            os.kill(pid, signal.SIGCONT)


def client(base: str) -> httpx.AsyncClient:
    """A client whose every request makes a connection of its own (none is kept or
    reused), accepted by whichever worker may take it. Made once: a client is slow to
    make, and a worker is stopped while another takes a connection."""
    return httpx.AsyncClient(
        base_url=base,
        headers={"X-API-Key": API_KEY, "Connection": "close"},
        timeout=None,
        limits=httpx.Limits(max_keepalive_connections=0),
    )


async def get_from(service: Service, worker: int, path: str) -> httpx.Response:
    """GET `path`, answered by `worker`."""
    async with only(service, worker):
        return await service.http.get(path)


async def count(service: Service, sql: str, **params: Any) -> int:
    async with service.engine.connect() as conn:
        return int((await conn.execute(text(sql), params)).scalar_one())


async def held_post(
    http: httpx.AsyncClient, filename: str, content: bytes, gate: asyncio.Event
) -> httpx.Response:
    """An orders upload (on_conflict=update) whose body pauses after its first half until
    `gate` is set: the upload starts, and cannot end before."""
    boundary = "orderlens-workers-test"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"'
        "\r\nContent-Type: text/csv\r\n\r\n"
    ).encode()
    half = len(content) // 2

    async def body() -> AsyncIterator[bytes]:
        yield head + content[:half]
        await gate.wait()
        yield content[half:] + f"\r\n--{boundary}--\r\n".encode()

    return await http.post(
        "/uploads/orders",
        params={"on_conflict": "update"},
        content=body(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )


async def upload_in(
    service: Service, worker: int, filename: str, content: bytes, gate: asyncio.Event
) -> asyncio.Task[httpx.Response]:
    """An orders upload taken by `worker`: back once its row is written (the upload runs
    there, see `held_post` for `gate`); the task gives its answer."""
    async with only(service, worker):
        task = asyncio.create_task(held_post(service.http, filename, content, gate))

        async def started() -> bool:
            sql = "SELECT count(*) FROM uploads WHERE filename = :filename"
            return task.done() or await count(service, sql, filename=filename) > 0

        await until(started)
    return task


def upload_posts(service: Service) -> dict[int, float]:
    """Upload requests per worker (one route per kind)."""
    counts: dict[int, float] = {}
    for route in ("/uploads/products", "/uploads/orders"):
        for pid, n in served_by_worker(service.metrics_dir, route, "POST").items():
            counts[pid] = counts.get(pid, 0) + n
    return counts


async def uploads_counted(service: Service) -> bool:
    """Every upload request counted by its worker (each one wrote an upload row)."""
    posts = sum(upload_posts(service).values())
    return posts == await count(service, "SELECT count(*) FROM uploads")


async def rate_expired(service: Service) -> None:
    """Until no worker can hold a fresh latest rate: the newest in the table (a worker
    keeps in memory what it read or wrote there) is older than TTL."""
    sql = (
        "SELECT count(*) FROM fx_rates WHERE kind = 'latest'"
        " AND fetched_at > clock_timestamp() - make_interval(secs => :ttl)"
    )

    async def expired() -> bool:
        return await count(service, sql, ttl=float(TTL)) == 0

    await until(expired)


async def queued_for_the_rate(service: Service, worker: int) -> list[asyncio.Task[httpx.Response]]:
    """Half the burst sent while only `worker` runs; back once `worker` waits with them
    for the rate's fetch (the lock, which the test holds, has one more waiter)."""
    async with only(service, worker):
        waiting = await count(service, FX_LOCK_WAITERS, namespace=FX_LOCK_NAMESPACE)
        batch = [asyncio.create_task(service.http.get("/kpis")) for _ in range(BURST // WORKERS)]

        async def queued() -> bool:
            return (
                any(task.done() for task in batch)
                or await count(service, FX_LOCK_WAITERS, namespace=FX_LOCK_NAMESPACE) > waiting
            )

        await until(queued)
    answered = [task.result().text for task in batch if task.done()]
    assert not answered, f"a /kpis request did not wait for the rate: {answered[0]}"
    return batch


@pytest.fixture(scope="module")
def fx_server() -> Iterator[FakeFxServer]:
    with fake_fx_server() as fake:
        yield fake


def _wait_for_workers(process: subprocess.Popen[bytes], log: Path, base: str) -> None:
    """Until every worker has started its app and the port answers (an exit fails at
    once, with the log; pytest-timeout bounds a hang)."""
    while True:
        if process.poll() is not None:
            pytest.fail(f"orderlens serve exited {process.returncode}:\n{log.read_text()}")
        if log.read_text().count("Application startup complete") >= WORKERS:
            try:
                if httpx.get(f"{base}/readyz", timeout=10).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        time.sleep(0.1)


def start_serve(
    data_dir: Path, env: dict[str, str], port: int | None = None
) -> tuple[str, subprocess.Popen[bytes], Path]:
    """`orderlens serve --workers 2` on `port` (a free one by default): its base URL,
    process and log."""
    env = {**env, "ORDERLENS_DATA_DIR": str(data_dir), "LOG_LEVEL": "INFO"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    port = port or free_port()
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
    """SIGTERM, as a supervisor would; the exit status. No deadline (pytest-timeout
    bounds a hang); a wait cut short kills the parent's group and each worker (sessions
    of their own, out of that group)."""
    process.send_signal(signal.SIGTERM)
    try:
        return await asyncio.to_thread(process.wait)
    finally:
        if process.poll() is None:
            for pid in worker_pids(process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            os.killpg(process.pid, signal.SIGKILL)


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
        # `only` steers a connection by stopping the other workers: that needs the one
        # socket they share (a socket of a stopped worker's own would hold it).
        "REUSE_PORT": "false",
    }
    # Counts of an earlier run: cleaned at start, or they would add up.
    (data_dir / "prometheus").mkdir()
    (data_dir / "prometheus" / "counter_999999.db").write_bytes(b"stale")
    base, process, log = start_serve(data_dir, env)
    engine = db.create_engine(url, pool_size=2)
    workers: tuple[int, ...] = ()
    http = client(base)
    try:
        await asyncio.to_thread(_wait_for_workers, process, log, base)
        assert not (data_dir / "prometheus" / "counter_999999.db").exists()
        workers = tuple(sorted(worker_pids(process.pid)))
        assert len(workers) == WORKERS, workers
        # A few orders, so that /kpis has USD figures and needs the rate.
        for kind, content in SEED.items():
            seeded = await http.post(f"/uploads/{kind}", files={"file": ("s.csv", content)})
            assert seeded.status_code == 201, seeded.text
        yield Service(data_dir / "prometheus", engine, log, process, workers, http)
    finally:
        for pid in workers:  # none left stopped by a test cut short
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        await stop(process)
        await http.aclose()
        await engine.dispose()
        await drop_database(pg_server, url)


class TestSeveralWorkers:
    async def test_a_cold_burst_makes_one_provider_call_across_workers(
        self, service: Service, fx_server: FakeFxServer
    ) -> None:
        await rate_expired(service)
        calls = fx_server.count("/v1/latest")
        before = served_by_worker(service.metrics_dir, "/kpis")
        burst: list[asyncio.Task[httpx.Response]] = []
        # The test holds the fetch's lock while half the burst goes to each worker: both
        # workers are then waiting for the rate, cold, when it lets go.
        async with service.engine.connect() as conn, conn.begin():
            await conn.execute(text(LOCK), FX_LATEST)
            for worker in service.workers:
                burst += await queued_for_the_rate(service, worker)
        answers = await asyncio.gather(*burst)
        assert {a.status_code for a in answers} == {200}, answers[0].text
        assert {a.json()["fx"]["rate"] for a in answers} == {"0.184965"}
        assert fx_server.count("/v1/latest") == calls + 1

        def counted() -> bool:
            after = served_by_worker(service.metrics_dir, "/kpis")
            return sum(after.values()) - sum(before.values()) == BURST

        await until(counted)  # a worker counts a request just after answering it
        assert grew(before, served_by_worker(service.metrics_dir, "/kpis")) == set(service.workers)

    async def test_metrics_sum_every_worker(self, service: Service) -> None:
        before = served_by_worker(service.metrics_dir, "/healthz")
        for worker in service.workers:
            async with only(service, worker):
                answers = await asyncio.gather(
                    *(service.http.get("/healthz") for _ in range(HEALTHZ))
                )
            assert {a.status_code for a in answers} == {200}
        sent = sum(before.values()) + HEALTHZ * WORKERS
        await until(lambda: sum(served_by_worker(service.metrics_dir, "/healthz").values()) == sent)
        after = served_by_worker(service.metrics_dir, "/healthz")
        each = {pid: after.get(pid, 0) - before.get(pid, 0) for pid in service.workers}
        assert each == dict.fromkeys(service.workers, HEALTHZ), (before, after)
        # Whichever worker answers the scrape, it counts the other's requests too.
        for worker in service.workers:
            async with only(service, worker):
                assert await scraped_total(service.http, "/healthz") == sent, worker

    async def test_uploads_to_both_workers_are_serial_equivalent(self, service: Service) -> None:
        products = 200
        orders = 20_000
        catalog = "id,name,category,price\n" + "".join(
            f"{i},Product {i},Category {i % 7},{i % 50}.25\n" for i in range(1, products + 1)
        )
        created = await service.http.post(
            "/uploads/products", files={"file": ("p.csv", catalog.encode())}
        )
        assert created.status_code == 201, created.text

        def orders_file(quantity: int) -> bytes:
            rows = (
                f"{i},{i % products + 1},{quantity},2024-12-{i % 28 + 1:02d}\n"
                for i in range(1, orders + 1)
            )
            return ("id,product_id,quantity,created_date\n" + "".join(rows)).encode()

        await until(lambda: uploads_counted(service))
        before = upload_posts(service)
        quantities = tuple(range(1, UPLOADS + 1))
        names = [f"orders-{q}.csv" for q in quantities]
        # Each upload starts in its worker (the workers in turn) and holds back half its
        # file: all of them run at once, in both workers, until the gate opens.
        gate = asyncio.Event()
        uploads = [
            await upload_in(service, service.workers[n % WORKERS], name, orders_file(q), gate)
            for n, (name, q) in enumerate(zip(names, quantities, strict=True))
        ]
        running = "SELECT count(*) FROM uploads WHERE status = 'running' AND filename = ANY(:names)"
        assert await count(service, running, names=names) == UPLOADS
        gate.set()
        answers = await asyncio.gather(*uploads)
        reports = [a.json() for a in answers]
        assert [a.status_code for a in answers] == [201] * UPLOADS, reports
        # Run in sequence, each upload changes every stored order (the first inserts
        # them): its quantity differs from all.
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
        await until(lambda: uploads_counted(service))
        assert grew(before, upload_posts(service)) == set(service.workers)

    async def test_a_read_after_an_upload_sees_it_in_every_worker(self, service: Service) -> None:
        # Each worker keeps answers in memory; an upload committed in one must reach the
        # other's next read. Each round reads in every worker (so the old answer is
        # kept), uploads in one (in turn), then reads in every worker again.
        path = "/insights/average-ticket"

        async def orders_seen(worker: int) -> int:
            answer = await get_from(service, worker, path)
            assert answer.status_code == 200, answer.text
            return int(answer.json()["orders"])

        before = served_by_worker(service.metrics_dir, path)
        expected = await orders_seen(service.workers[0])
        reads = 1
        unheld = asyncio.Event()
        unheld.set()  # the whole body at once
        for round_ in range(2 * WORKERS):
            for worker in service.workers:
                assert await orders_seen(worker) == expected, (round_, worker)
            order = (
                "id,product_id,quantity,created_date\n"
                f"{5_000_000 + round_},1001,{round_ + 1},2024-11-{round_ % 28 + 1:02d}\n"
            )
            uploader = service.workers[round_ % WORKERS]
            posted = await (
                await upload_in(service, uploader, f"read-{round_}.csv", order.encode(), unheld)
            )
            assert posted.status_code == 201, posted.text
            expected += 1
            for worker in service.workers:
                assert await orders_seen(worker) == expected, (round_, worker, uploader)
            reads += 2 * WORKERS

        def counted() -> bool:
            after = served_by_worker(service.metrics_dir, path)
            return sum(after.values()) - sum(before.values()) == reads

        await until(counted)
        assert grew(before, served_by_worker(service.metrics_dir, path)) == set(service.workers)


CONNECTIONS = 64  # made at once, each for one request


def burst(port: int, workers: list[int]) -> None:
    """CONNECTIONS connections made and each sent a request while every worker is
    stopped, so that all of them wait to be accepted at once, as when many clients start
    together; then the first worker is continued, the others a moment later (one awake
    first, as some worker always is), and every answer read."""
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    for pid in workers:
        os.kill(pid, signal.SIGSTOP)
    connections = []
    try:
        while not all(process_state(pid) == "T" for pid in workers):
            time.sleep(0.01)
        for _ in range(CONNECTIONS):
            # Loopback: the kernel completes the handshake, whoever accepts it later.
            connection = socket.create_connection(("127.0.0.1", port))
            connection.sendall(request)
            connections.append(connection)
    finally:
        os.kill(workers[0], signal.SIGCONT)
        # Only the sharing of one socket depends on this moment: the first worker takes
        # all there is in it, while from a socket per worker it takes its own share.
        time.sleep(0.5)
        for pid in workers[1:]:
            os.kill(pid, signal.SIGCONT)
    for connection in connections:
        with connection:
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]


async def spread(port: int, metrics: Path, workers: list[int]) -> dict[int, float]:
    """How many connections of a `burst` each of `workers` answered (its metrics' count
    of their requests)."""
    before = served_by_worker(metrics, "/healthz")
    await asyncio.to_thread(burst, port, workers)

    def counted() -> bool:
        after = served_by_worker(metrics, "/healthz")
        return sum(after.values()) - sum(before.values()) == CONNECTIONS

    await until(counted)  # a worker counts a request just after answering it
    after = served_by_worker(metrics, "/healthz")
    return {pid: after.get(pid, 0) - before.get(pid, 0) for pid in workers}


@pytest.fixture
async def own_database(pg_server: URL) -> AsyncIterator[dict[str, str]]:
    """The environment of a service on a database of its own, dropped at the end."""
    url = await create_database(pg_server)
    try:
        yield {
            **os.environ,
            "DATABASE_URL": url.render_as_string(hide_password=False),
            "API_KEY": API_KEY,
        }
    finally:
        await drop_database(pg_server, url)


class TestASocketPerWorker:
    async def test_a_burst_of_connections_is_spread_over_the_workers(
        self, own_database: dict[str, str], tmp_path: Path
    ) -> None:
        # On one shared socket the first worker awake accepts every connection waiting.
        # On a socket per worker the kernel spreads them evenly: of 64, the fewer one of
        # two workers gets is 32 ± 4 (one standard deviation); under 16, a chance of
        # about 1 in 25,000.
        base, process, log = start_serve(tmp_path, own_database)
        metrics, port = tmp_path / "prometheus", int(base.rsplit(":", 1)[1])
        other: subprocess.Popen[bytes] | None = None
        try:
            await asyncio.to_thread(_wait_for_workers, process, log, base)
            workers = worker_pids(process.pid)
            assert "a socket per worker" in log.read_text()
            each = await spread(port, metrics, workers)
            assert min(each.values()) >= CONNECTIONS // 4, each
            # A worker that dies takes its socket along; its replacement opens its own.
            os.kill(workers[0], signal.SIGKILL)

            def replaced() -> bool:
                now = set(worker_pids(process.pid))
                return len(now) == WORKERS and workers[0] not in now

            await until(replaced)
            started = "Application startup complete"
            await until(lambda: log.read_text().count(started) == WORKERS + 1)
            now = worker_pids(process.pid)
            each = await spread(port, metrics, now)
            assert min(each.values()) >= CONNECTIONS // 4, each
            # Another service on the same port: refused, never a share of its connections.
            (tmp_path / "other").mkdir()
            _, other, other_log = start_serve(tmp_path / "other", own_database, port)
            assert await asyncio.to_thread(other.wait) == 3, other_log.read_text()
            assert "Address already in use" in other_log.read_text()
        finally:
            if other is not None and other.poll() is None:
                await stop(other)
            for pid in worker_pids(process.pid):  # none left stopped by a failure
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
            await stop(process)


class TestASessionPerWorker:
    async def test_each_worker_is_a_session_stopped_with_its_parent(
        self, own_database: dict[str, str], tmp_path: Path
    ) -> None:
        # Linux's autogroup shares the cores between sessions, and every PostgreSQL
        # backend is one of its own: workers sharing one got one share among them all.
        started: list[subprocess.Popen[bytes]] = []
        every: list[int] = []  # workers, killed at the end if a failure left them
        try:
            for run, end in (("interrupted", signal.SIGINT), ("killed", signal.SIGKILL)):
                (tmp_path / run).mkdir()
                base, process, log = start_serve(tmp_path / run, own_database)
                started.append(process)
                await asyncio.to_thread(_wait_for_workers, process, log, base)
                workers = worker_pids(process.pid)
                assert len(workers) == WORKERS
                every += workers
                for pid in workers:
                    assert os.getsid(pid) == pid, (pid, os.getsid(pid))
                    assert os.getpgid(pid) != process.pid
                if end == signal.SIGINT:
                    # A terminal's Ctrl-C reaches the parent's group only: the parent
                    # stops each worker, which finishes as it would on its own signal.
                    os.killpg(process.pid, signal.SIGINT)
                    assert await asyncio.to_thread(process.wait) == 0, log.read_text()
                    assert log.read_text().count("Finished server process") == WORKERS
                else:
                    # A parent killed has no say: the kernel sends each worker SIGTERM.
                    process.kill()
                    await asyncio.to_thread(process.wait)
                for pid in workers:
                    await until(partial(ended, pid))
        finally:
            for process in started:
                if process.poll() is None:
                    await stop(process)
            for pid in filter(lambda pid: not ended(pid), every):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


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
            async with client(base) as http:
                ready = await http.get("/readyz")
            assert ready.status_code == 200, ready.text
        finally:
            assert await stop(process) == 0, log.read_text()
        assert not (pgdata / "postmaster.pid").exists(), "the embedded server still runs"
