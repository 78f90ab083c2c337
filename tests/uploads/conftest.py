"""Fixtures for upload tests: a client, and helpers to read back what was stored."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.oracles import RECOMPUTED, STORED

PRODUCTS = "id,name,category,price\n1,Shirt,Shirts,10.00\n2,Pants,Pants,20.50\n3,Hat,Hats,5\n"


class Db:
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


@pytest.fixture
def db(engine: AsyncEngine, clean_db: None) -> Db:
    return Db(engine)
