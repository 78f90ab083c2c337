"""Fixtures for the reliability suites: the upload tests' database helper."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.uploads.conftest import Db

# Tables that an upload writes to, besides `uploads` itself.
LOADED_TABLES = (
    "products",
    "orders",
    "rejects",
    "daily_sales",
    "product_sales",
    "product_daily_sales",
)


@pytest.fixture
def db(engine: AsyncEngine, clean_db: None) -> Db:
    return Db(engine)


async def table_counts(db: Db) -> dict[str, int]:
    return {table: await db.count(table) for table in LOADED_TABLES}
