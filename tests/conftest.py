"""Test fixtures: a real PostgreSQL with migrations applied once per run, a clean
database for every test, and an HTTP client over the app with its lifespan running;
and what several test folders share: the database reader (`db`), the service with a
fake FX provider (`api`), the service on a real port (`live`), the test products.

The server is DATABASE_URL's when set (tests then work in a database of their own on it,
dropped at the end), otherwise a throwaway embedded one.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import URL, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app import db
from app.config import Settings
from app.db import tables
from app.main import create_app
from tests.fx.fake import ASSESSMENT_RATE, FakeFreeCurrencyApi
from tests.oracles import RECOMPUTED, STORED

# Prefect reads its settings once, when first imported (at collection, by the pipeline
# tests): so here, before that. Its home (its temporary server's database) is this test
# process's own, and that server may take its time to start on a busy machine (the
# default is 20 s; the suite run twice at once under a CPU hog took longer).
_PREFECT_HOME = tempfile.mkdtemp(prefix="orderlens-test-prefect-")
atexit.register(shutil.rmtree, _PREFECT_HOME, ignore_errors=True)
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

API_KEY = "test-api-key"
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
# A real shop's order lines (../shared/data/online_retail/README.md).
ONLINE_RETAIL = REFERENCE.parent / "data" / "online_retail" / "online_retail.parquet"


def require_online_retail() -> Path:
    """The real shop's order lines, or the test fails saying where they must be."""
    if not ONLINE_RETAIL.is_file():
        pytest.fail(f"the real shop's order lines are absent: {ONLINE_RETAIL}", pytrace=False)
    return ONLINE_RETAIL


def require_reference() -> Path:
    """The assessment's reference folder, or the test fails saying where it must be: the
    figures it checks are the assessment's, never copied into the repo, and a missing
    folder is a broken checkout, not a reason to pass."""
    if not (REFERENCE / "data").is_dir():
        pytest.fail(
            f"the assessment's reference folder is absent: {REFERENCE} (../shared/reference"
            " beside the repo, with data/products.csv and data/orders.csv) is needed by the"
            " tests that check the assessment's figures",
            pytrace=False,
        )
    return REFERENCE


# Data tables, emptied before each test; the schema itself is built once per run.
DATA_TABLES = ", ".join(
    table.name
    for table in tables.metadata.sorted_tables
    # The service's identity, not its data: kept as a service keeps it.
    if table.name not in {"alembic_version", "instance"}
)


# Which server the run used, said at its end (CI runs the suite on several versions).
SERVER_SEEN = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def pg_server(pytestconfig: pytest.Config) -> Iterator[URL]:
    """Admin URL of the PostgreSQL server the tests use."""
    if url := os.environ.get("DATABASE_URL"):
        admin = db.to_async_url(url)
        pytestconfig.stash[SERVER_SEEN] = f"DATABASE_URL's, {asyncio.run(_version(admin))}"
        yield admin
        return
    # Not in pytest's folder: pytest makes /tmp/pytest-of-USER private (0700) whenever a
    # session starts, any session of the machine; as root, the server runs as another
    # user, which then loses its way to its own files (a PANIC at its next checkpoint).
    folder = Path(tempfile.mkdtemp(prefix="orderlens-tests-pg-"))
    try:
        server = db.start_embedded(folder)
        pytestconfig.stash[SERVER_SEEN] = f"embedded, {asyncio.run(_version(server.url))}"
        yield server.url
        server.release()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def _version(url: URL) -> str:
    conn = await asyncpg.connect(db.asyncpg_dsn(url))
    try:
        return str(await conn.fetchval("SELECT version()"))
    finally:
        await conn.close()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A pytest-xdist worker hands the server it used to the controller, which prints it."""
    output = getattr(session.config, "workeroutput", None)
    if output is not None and (seen := session.config.stash.get(SERVER_SEEN, None)):
        output["server_seen"] = seen


def pytest_testnodedown(node: Any, error: Any) -> None:
    if seen := getattr(node, "workeroutput", {}).get("server_seen"):
        node.config.stash[SERVER_SEEN] = seen


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if seen := config.stash.get(SERVER_SEEN, None):
        terminalreporter.write_line(f"PostgreSQL server of this run: {seen}")


async def create_database(admin: URL, *, migrate: bool = True) -> URL:
    """A new, uniquely named database on the test server (migrated to head by default)."""
    url = await db.ensure_database(admin, f"orderlens_test_{uuid.uuid4().hex[:10]}")
    if migrate:
        await asyncio.to_thread(db.upgrade, url)
    return url


async def drop_database(admin: URL, url: URL) -> None:
    conn = await asyncpg.connect(db.asyncpg_dsn(admin))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def database_url(pg_server: URL) -> AsyncIterator[URL]:
    """The run's database, migrated once."""
    url = await create_database(pg_server)
    yield url
    await drop_database(pg_server, url)


@pytest.fixture(scope="session")
async def engine(database_url: URL) -> AsyncIterator[AsyncEngine]:
    engine = db.create_engine(database_url, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture
async def clean_db(engine: AsyncEngine) -> None:
    """Every test starts from empty tables at the head schema.

    Not one rolled-back outer transaction: uploads commit through their own
    transactions and COPY on raw connections, which such a wrapper would hide.
    """
    await empty_data_tables(engine)


async def empty_data_tables(engine: AsyncEngine) -> None:
    """Every data table emptied, identities restarted (the schema and `instance` kept)."""
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {DATA_TABLES} RESTART IDENTITY CASCADE"))


def make_settings(database_url: URL, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url.render_as_string(hide_password=False),
        "api_key": API_KEY,
        "orderlens_data_dir": data_dir,
        "fx_provider": "ecb",
        **overrides,
    }
    return Settings(_env_file=None, **values)


@pytest.fixture
def settings(database_url: URL, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


async def open_client(
    app: FastAPI, *, raise_app_exceptions: bool = False
) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client; `raise_app_exceptions` raises what the app let out to the
    server (which a server logs, and then closes the connection)."""
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(transport=transport, base_url="http://orderlens.test") as c:
            yield c


@pytest.fixture
async def client(app: FastAPI, clean_db: None) -> AsyncIterator[httpx.AsyncClient]:
    async for c in open_client(app):
        yield c


@pytest.fixture
def live(settings: Settings, clean_db: None) -> Iterator[str]:
    """The app under uvicorn on a real 127.0.0.1 port (its base URL), for what only real
    sockets show: the command line, disconnects, the health check."""
    from tests.helpers import live_server  # tests.helpers imports this module

    with live_server(create_app(settings)) as base:
        yield base


@pytest.fixture
def fake_fx() -> FakeFreeCurrencyApi:
    return FakeFreeCurrencyApi(latest_rate=ASSESSMENT_RATE)


@pytest.fixture
async def api(
    database_url: URL, tmp_path: Path, fake_fx: FakeFreeCurrencyApi, clean_db: None
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the service with freecurrencyapi as its provider, answered by `fake_fx`."""
    from tests.helpers import fx_app  # tests.helpers imports this module

    async for client in open_client(fx_app(database_url, tmp_path, fake_fx)):
        yield client


# Three products: what most upload tests start from.
PRODUCTS = "id,name,category,price\n1,Shirt,Shirts,10.00\n2,Pants,Pants,20.50\n3,Hat,Hats,5\n"
# Tables that an upload writes to, besides `uploads` itself.
LOADED_TABLES = (
    "products",
    "orders",
    "rejects",
    "daily_sales",
    "product_sales",
    "product_daily_sales",
)


class Db:
    """Reads back what the service stored."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        async with self.engine.connect() as conn:
            return [tuple(r) for r in (await conn.execute(text(sql), params)).all()]

    async def count(self, table: str) -> int:
        return (await self.rows(f"SELECT count(*) FROM {table}"))[0][0]  # type: ignore[no-any-return]

    async def assert_rollups_exact(self) -> None:
        """Every rollup equals its recomputation from orders and products."""
        for name, stored in STORED.items():
            assert await self.rows(stored) == await self.rows(RECOMPUTED[name]), name


@pytest.fixture(name="db")  # named apart from app.db, which this module uses
def db_reader(engine: AsyncEngine, clean_db: None) -> Db:
    return Db(engine)


async def table_counts(db: Db) -> dict[str, int]:
    return {table: await db.count(table) for table in LOADED_TABLES}
