import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import URL, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from app import db
from app.main import create_app
from tests.conftest import Db, create_database, drop_database, make_settings, open_client
from tests.helpers import upload
from tests.oracles import RECOMPUTED, STORED

EXPECTED_TABLES = {
    "products",
    "product_prices",
    "alerts",
    "basket_days",
    "orders",
    "uploads",
    "rejects",
    "fx_rates",
    "daily_sales",
    "product_daily_sales",
    "product_sales",
    "data_version",
    "growth_leaders",
    "syncs",
    "instance",
    "forecast_runs",
    "forecast_products",
    "predicted_product_demand",
    "predicted_level_demand",
    "units_through_month",
    "units_month_to_date",
}


async def tables(url: URL) -> set[str]:
    engine = db.create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    finally:
        await engine.dispose()
    return names - {"alembic_version"}


@pytest.fixture
async def blank_url(pg_server: URL) -> AsyncIterator[URL]:
    url = await create_database(pg_server, migrate=False)
    yield url
    await drop_database(pg_server, url)


class TestMigrations:
    async def test_up_down_up(self, blank_url: URL) -> None:
        await asyncio.to_thread(db.upgrade, blank_url)
        assert await tables(blank_url) == EXPECTED_TABLES
        await asyncio.to_thread(db.downgrade, blank_url, "base")
        assert await tables(blank_url) == set()
        await asyncio.to_thread(db.upgrade, blank_url)
        assert await tables(blank_url) == EXPECTED_TABLES

    async def test_every_migration_steps_down_and_up(self, blank_url: URL) -> None:
        script = ScriptDirectory.from_config(db.alembic_config())
        revisions = [r.revision for r in script.walk_revisions("base", "heads")][::-1]
        for revision in revisions:
            await asyncio.to_thread(db.upgrade, blank_url, revision)
            await asyncio.to_thread(db.downgrade, blank_url, "-1")
            await asyncio.to_thread(db.upgrade, blank_url, revision)
        engine = db.create_engine(blank_url, pool_size=1)
        try:
            assert await db.current_revision(engine) == db.head_revision()
        finally:
            await engine.dispose()

    async def test_models_and_migrations_agree(self, database_url: URL) -> None:
        # `alembic check`: autogenerate finds nothing to add, drop or alter.
        await asyncio.to_thread(command.check, db.alembic_config(database_url))

    async def test_constraints_exist(self, database_url: URL) -> None:
        engine = db.create_engine(database_url, pool_size=1)

        def inspect_all(conn: Connection) -> dict[str, object]:
            insp = inspect(conn)
            return {
                "orders_fk": insp.get_foreign_keys("orders"),
                "orders_ix": {ix["name"] for ix in insp.get_indexes("orders")},
                "products_ix": {ix["name"] for ix in insp.get_indexes("products")},
                "checks": {
                    c["name"]
                    for t in ("products", "orders", "uploads", "rejects", "fx_rates")
                    for c in insp.get_check_constraints(t)
                },
            }

        try:
            async with engine.connect() as conn:
                found = await conn.run_sync(inspect_all)
        finally:
            await engine.dispose()
        fks = found["orders_fk"]
        assert isinstance(fks, list)
        assert [(fk["referred_table"], fk["constrained_columns"]) for fk in fks] == [
            ("products", ["product_id"])
        ]
        assert {"ix_orders_created_date", "ix_orders_product_id"} <= found["orders_ix"]  # type: ignore[operator]
        assert "ix_products_category" in found["products_ix"]  # type: ignore[operator]
        assert {
            "ck_products_product_id_range",
            "ck_products_price_not_negative",
            "ck_products_name_not_blank",
            "ck_orders_quantity_range",
            "ck_orders_order_id_positive",
            "ck_rejects_error_code_known",
            "ck_fx_rates_rate_positive",
            "ck_uploads_status_known",
        } <= found["checks"]  # type: ignore[operator]

    async def test_vacuum_never_truncates_the_data_version(self, database_url: URL) -> None:
        """Every kept answer waits for a read of `data_version`; a vacuum's truncation
        of it locks those reads out across a WAL flush (migration 0022)."""
        engine = db.create_engine(database_url, pool_size=1)
        try:
            async with engine.connect() as conn:
                options: list[str] = (
                    await conn.execute(
                        text("SELECT reloptions FROM pg_class WHERE oid = 'data_version'::regclass")
                    )
                ).scalar_one()
        finally:
            await engine.dispose()
        assert options == ["vacuum_truncate=false"]

    async def test_baskets_are_compared_by_bytes(self, database_url: URL) -> None:
        """A big upload adds hundreds of thousands of basket days to `basket_days`' key:
        compared by bytes, not by the language's collation (migration 0023). The temporary
        deltas merged into it compare the same way, or PostgreSQL could not join them."""
        engine = db.create_engine(database_url, pool_size=1)
        try:
            async with engine.connect() as conn:
                collation: str = (
                    await conn.execute(
                        text(
                            "SELECT collation_name FROM information_schema.columns"
                            " WHERE table_name = 'basket_days' AND column_name = 'basket'"
                        )
                    )
                ).scalar_one()
        finally:
            await engine.dispose()
        assert collation == "C"

    async def test_running_sums_stay_integers_and_fail_beyond_them(self, database_url: URL) -> None:
        """`bigint_sum` (migration 0024) answers `bigint`, in a window too, taking rows
        away in a moving one; a total beyond `bigint` fails rather than wraps."""
        engine = db.create_engine(database_url, pool_size=1)
        try:
            async with engine.connect() as conn:
                rows = (
                    await conn.execute(
                        text(
                            "SELECT pg_typeof(bigint_sum(x) OVER w)::text, bigint_sum(x) OVER w,"
                            " bigint_sum(x) OVER (w ROWS 1 PRECEDING)"
                            " FROM (VALUES (1, 5::bigint), (2, NULL), (3, -2), (4, 10)) v(i, x)"
                            " WINDOW w AS (ORDER BY i)"
                        )
                    )
                ).all()
                with pytest.raises(DBAPIError, match="bigint out of range"):
                    await conn.execute(
                        text("SELECT bigint_sum(x) FROM (VALUES (9223372036854775807), (1)) v(x)")
                    )
        finally:
            await engine.dispose()
        assert [tuple(r) for r in rows] == [
            ("bigint", 5, 5), ("bigint", 5, 5), ("bigint", 3, -2), ("bigint", 13, 8),
        ]  # fmt: skip

    async def test_the_running_units_are_built_from_the_stored_cells(
        self, blank_url: URL, tmp_path: Path
    ) -> None:
        """Migration 0009 builds them for data loaded before it (months with gaps, days
        without a product's sales in between)."""
        await asyncio.to_thread(db.upgrade, blank_url)
        async for client in open_client(create_app(make_settings(blank_url, tmp_path))):
            products = "id,name,category,price\n1,A,X,1.00\n2,B,Y,2.00\n3,C,X,3.00\n"
            assert (await upload(client, "products", products)).status_code == 201
            # A product carried over a day without its sales, a month that starts anew,
            # a month without orders.
            sales = [
                (1, 2, "2024-01-30"),
                (2, 1, "2024-01-30"),
                (1, 1, "2024-01-31"),
                (3, 4, "2024-02-01"),
                (1, 1, "2024-02-03"),
                (1, 2, "2024-02-03"),
                (2, 5, "2024-04-10"),
            ]
            lines = "".join(f"{n},{p},{q},{d}\n" for n, (p, q, d) in enumerate(sales, 1))
            orders = "id,product_id,quantity,created_date\n" + lines
            assert (await upload(client, "orders", orders)).status_code == 201
        await asyncio.to_thread(db.downgrade, blank_url, "0008")
        await asyncio.to_thread(db.upgrade, blank_url)
        engine = db.create_engine(blank_url, pool_size=1)
        try:
            for table in ("units_month_to_date", "units_through_month"):
                stored = await Db(engine).rows(STORED[table])
                assert stored and stored == await Db(engine).rows(RECOMPUTED[table]), table
        finally:
            await engine.dispose()

    @pytest.mark.parametrize(
        "statement",
        [
            "INSERT INTO products VALUES (0, 'p', 'c', 1)",
            "INSERT INTO products VALUES (1, '  ', 'c', 1)",
            "INSERT INTO products VALUES (1, 'p', 'c', -0.01)",
            "INSERT INTO products VALUES (1, 'p', 'c', 10000000000)",
            "INSERT INTO products VALUES (1, 'p', NULL, 1)",
            "INSERT INTO orders VALUES (1, 999, 1, '2024-12-01')",
            "INSERT INTO uploads (kind) VALUES ('customers')",
        ],
    )
    async def test_database_enforces_the_input_rules(
        self, engine: AsyncEngine, clean_db: None, statement: str
    ) -> None:
        with pytest.raises(DBAPIError):
            async with engine.begin() as conn:
                await conn.execute(text(statement))
