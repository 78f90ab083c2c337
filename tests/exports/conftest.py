"""The warehouse tests' service: a real uvicorn on a loopback port (the sync reads over
HTTP), the sample in data/ loaded through the API, a fake FX provider."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import API_KEY, create_database, drop_database, empty_data_tables
from tests.fx.fake import ASSESSMENT_RATE, FakeFreeCurrencyApi
from tests.helpers import fx_app, live_server

SAMPLE = Path(__file__).parents[2] / "data"
# The dataset of the tests whose SQL names the raw tables (orderlens_raw.orders): given
# to the sync and to dbt (ORDERLENS_DATASET). Without it a sync loads into the service's
# instance id (TestDatasets, the pipeline's tests, TestDbtOnDuckDB).
RAW = "orderlens_raw"


# Text ids (issue 27, item 4): coded products and lines beside integer ones, uploaded with
# `?ids=text` after the sample (whose line ids run 1…300). The coded product grows most
# from 2024-12-01 to 12-02, so it leads both top-growth bases.
TEXT = {"ids": "text"}
CODED_PRODUCTS = b"id,name,category,price\n85123A,Heart,Decor,2.55\n71053,Lantern,Decor,3.39\n"
CODED_ORDERS = (
    b"id,product_id,quantity,created_date\n"
    b"L-1,85123A,2,2024-12-01\n9101,71053,1,2024-12-01\nL-3,85123A,60,2024-12-02\n"
)


def post(
    base: str,
    kind: str,
    body: bytes,
    on_conflict: str = "reject",
    params: dict[str, str] | None = None,
) -> dict[str, object]:
    response = httpx.post(
        f"{base}/uploads/{kind}",
        files={"file": (f"{kind}.csv", body, "text/csv")},
        params={"on_conflict": on_conflict, **(params or {})},
        headers={"X-API-Key": API_KEY},
        timeout=60,
    )
    assert response.status_code == 201, response.text
    report: dict[str, object] = response.json()
    return report


@contextmanager
def serving(database_url: URL, data_dir: Path) -> Iterator[str]:
    """The service's base URL, with the sample loaded."""
    app = fx_app(database_url, data_dir, FakeFreeCurrencyApi(latest_rate=ASSESSMENT_RATE))
    with live_server(app) as base:
        for kind in ("products", "orders"):
            post(base, kind, (SAMPLE / f"{kind}.csv").read_bytes())
        yield base


@pytest.fixture
async def warehouse_db(pg_server: URL) -> AsyncIterator[URL]:
    """An empty database of the test server, for a PostgreSQL warehouse."""
    url = await create_database(pg_server, migrate=False)
    yield url
    await drop_database(pg_server, url)


@pytest.fixture
async def another_service(pg_server: URL, tmp_path: Path) -> AsyncIterator[str]:
    """A second service, on a database of its own, holding only the coded products and
    lines (a different instance id, different figures)."""
    url = await create_database(pg_server)
    try:
        app = fx_app(url, tmp_path / "another", FakeFreeCurrencyApi(latest_rate=ASSESSMENT_RATE))
        with live_server(app) as base:
            post(base, "products", CODED_PRODUCTS, params=TEXT)
            post(base, "orders", CODED_ORDERS, params=TEXT)
            yield base
    finally:
        await drop_database(pg_server, url)


@pytest.fixture
def served(database_url: URL, tmp_path: Path, clean_db: None) -> Iterator[str]:
    """A service of its own for a test that changes its data."""
    with serving(database_url, tmp_path) as base:
        yield base


@pytest.fixture(scope="module")
async def served_for_reads(
    database_url: URL, engine: AsyncEngine, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """One service for the tests of a module that only read it (the dbt builds)."""
    await empty_data_tables(engine)
    with serving(database_url, tmp_path_factory.mktemp("served")) as base:
        yield base
