"""The dbt project on the synced raw tables, on DuckDB and on PostgreSQL: it builds, its
tests pass, and every mart figure equals what the API answers for the same data, to the
cent."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import httpx
import psycopg
import pyarrow.parquet as pq
import pytest
from sqlalchemy import URL

from app.exports import dbt_project, sync
from tests.exports.conftest import CODED_ORDERS, CODED_PRODUCTS, RAW, TEXT, post


def dbt(command: list[str], target: str, env: dict[str, str], work: Path) -> Any:
    """dbt on the project, the raw tables in RAW unless `env` names another dataset."""
    return dbt_project.invoke(command, target, {"ORDERLENS_DATASET": RAW, **env}, work)


def dbt_build(target: str, env: dict[str, str], work: Path) -> None:
    """`dbt build`, which must pass."""
    result = dbt(["build"], target, env, work)
    failed: Any = result.result
    assert result.success, result.exception or [
        (r.node.name, r.status, r.message) for r in failed if r.status not in ("success", "pass")
    ]


Rows = list[dict[str, Any]]


class Marts:
    """Reads the built marts, whatever the warehouse."""

    def __init__(self, query: Any, schema: str = "analytics") -> None:
        self.query = query
        self.schema = schema

    def table(self, name: str, order: str) -> Rows:
        rows: Rows = self.query(f"SELECT * FROM {self.schema}.{name} ORDER BY {order}")
        return rows


def duckdb_marts(path: Path, schema: str = "analytics") -> Marts:
    def query(sql: str) -> Rows:
        # Not read-only: dbt-duckdb keeps its connection to the file open in this process,
        # and DuckDB refuses a second one with another configuration.
        with duckdb.connect(str(path)) as conn:
            cursor = conn.execute(sql)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    return Marts(query, schema)


def postgres_marts(dsn: str) -> Marts:
    def query(sql: str) -> Rows:
        with psycopg.connect(dsn) as conn, conn.cursor() as cursor:
            cursor.execute(sql)
            names = [d.name for d in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    return Marts(query)


def money(value: Any) -> str:
    return str(Decimal(value).quantize(Decimal("0.01")))


def assert_marts_equal_the_api(base: str, marts: Marts) -> None:
    get = httpx.Client(base_url=base, timeout=30).get
    # kpi_product_orders: the export's file, text for text.
    exported = list(csv.DictReader(io.StringIO(get("/exports/kpi_product_orders.csv").text)))
    built = marts.table("kpi_product_orders", "position")
    assert [(r["kpi_name"], r["value"]) for r in built] == [
        (r["kpi_name"], r["value"]) for r in exported
    ]
    kpis = get("/kpis").json()
    assert built[0]["value"] == kpis["max_order_date"]["date"]
    assert built[2]["value"] == kpis["most_demanded_product"]["sales_usd"]

    # order_full_information: the export, row for row (both in key order); the file's
    # order_id is the line's code where its id was text.
    exported = list(csv.DictReader(io.StringIO(get("/exports/order_full_information.csv").text)))
    built = marts.table("order_full_information", "order_created_date, order_id")
    assert len(built) == len(exported) > 0
    for mine, theirs in zip(built, exported, strict=True):
        assert str(mine["order_created_date"]) == theirs["order_created_date"]
        assert str(mine["order_code"] or mine["order_id"]) == theirs["order_id"]
        assert mine["product_name"] == theirs["product_name"]
        assert str(mine["quantity"]) == theirs["quantity"]
        assert money(mine["total_price"]) == money(theirs["total_price"])

    # daily_revenue: every day of the series.
    days = get("/insights/daily-revenue", params={"limit": 1000}).json()["items"]
    built = marts.table("daily_revenue", '"date"')
    assert [
        {
            "date": str(r["date"]),
            "orders": int(r["orders"]),
            "quantity": int(r["quantity"]),
            "revenue_brl": money(r["revenue_brl"]),
            "revenue_usd": money(r["revenue_usd"]),
            "revenue_brl_7d_avg": money(r["revenue_brl_7d_avg"]),
        }
        for r in built
    ] == days

    # average_ticket
    ticket = get("/insights/average-ticket").json()
    [row] = marts.table("average_ticket", "orders")
    assert int(row["orders"]) == ticket["orders"]
    assert money(row["revenue_brl"]) == ticket["revenue_brl"]
    assert money(row["average_ticket_brl"]) == ticket["average_ticket_brl"]
    assert money(row["average_ticket_usd"]) == ticket["average_ticket_usd"]

    # top growth, both bases: the API's top 25 = the mart's first 25.
    for basis in ("calendar", "previous_sale"):
        top = get("/insights/top-growth", params={"limit": 25, "basis": basis}).json()["items"]
        built = [
            r
            for r in marts.table("product_day_over_day_growth", 'growth DESC, "date", product_id')
            if r["basis"] == basis
        ][:25]
        assert [
            {
                "product_id": r["product_code"] or int(r["product_id"]),
                "product_name": r["product_name"],
                "date": str(r["date"]),
                "previous_date": str(r["previous_date"]),
                "quantity": int(r["quantity"]),
                "previous_quantity": int(r["previous_quantity"]),
                "growth": int(r["growth"]),
            }
            for r in built
        ] == top, basis


def undescribed(manifest: dict[str, Any], built: dict[tuple[str, str], list[str]]) -> list[str]:
    """Every model, source table and column the warehouse holds without a description in
    the project's docs: `built` maps (schema, table) to the columns it really has."""
    missing = []
    nodes = [
        *[n for n in manifest["nodes"].values() if n["resource_type"] == "model"],
        *manifest["sources"].values(),
    ]
    for node in nodes:
        name = node.get("identifier") or node["name"]
        if not node["description"].strip():
            missing.append(name)
        described = {c: v["description"].strip() for c, v in node["columns"].items()}
        columns = built.get((node["schema"], name), list(described))  # ephemeral: as written
        missing += [f"{name}.{c}" for c in columns if not described.get(c)]
    return missing


@pytest.mark.one_server
class TestDbtOnDuckDB:
    async def test_build_and_figures_equal_the_api(
        self, served_for_reads: str, tmp_path: Path
    ) -> None:
        served = served_for_reads
        path = tmp_path / "warehouse.duckdb"
        # Into the service's instance id, its default dataset, which dbt is told.
        outcome = await asyncio.to_thread(sync.sync, sync.Service(served), f"duckdb:///{path}")
        dataset = outcome.dataset
        env = {"ORDERLENS_WAREHOUSE": str(path), "ORDERLENS_DATASET": dataset}
        await asyncio.to_thread(dbt_build, "duckdb", env, tmp_path)
        await asyncio.to_thread(assert_marts_equal_the_api, served, duckdb_marts(path))

        # Every model, source and column built is described (issue 28, item 6).
        manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
        built: dict[tuple[str, str], list[str]] = {}
        for row in duckdb_marts(path).query(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns"
            " ORDER BY ordinal_position"
        ):
            built.setdefault((row["table_schema"], row["table_name"]), []).append(
                row["column_name"]
            )
        assert ("analytics", "fct_orders") in built and (dataset, "orders") in built
        assert undescribed(manifest, built) == []
        # The check sees a column nobody wrote down.
        built["analytics", "fct_orders"].append("an_undescribed_column")
        assert undescribed(manifest, built) == ["fct_orders.an_undescribed_column"]

        # dbt's docs site builds from it (`make warehouse-docs` serves what this writes).
        docs = await asyncio.to_thread(dbt, ["docs", "generate"], "duckdb", env, tmp_path)
        assert docs.success
        catalog = json.loads((tmp_path / "target" / "catalog.json").read_text())
        fct = catalog["nodes"]["model.orderlens.fct_orders"]["columns"]
        assert {"order_id", "total_price", "_loaded_until"} <= set(fct)

        # A warehouse an earlier version built (its fct_orders without the incremental
        # bookkeeping): the build says what to do, and --full-refresh does it.
        with duckdb.connect(str(path)) as conn:
            conn.execute("DROP VIEW analytics.order_full_information")  # a table then
            assert conn.execute("SELECT count(*) FROM duckdb_indexes()").fetchone() == (0,)
            conn.execute("ALTER TABLE analytics.fct_orders DROP COLUMN _loaded_until")
        old = await asyncio.to_thread(dbt, ["build"], "duckdb", env, tmp_path)
        assert not old.success
        said = [str(r.message) for r in old.result or []] + [str(old.exception)]
        assert any("build once with --full-refresh" in m for m in said), said
        assert not [r for r in old.result or [] if r.node.resource_type in ("model", "test")]
        refreshed = await asyncio.to_thread(
            dbt, ["build", "--full-refresh"], "duckdb", env, tmp_path
        )
        assert refreshed.success
        await asyncio.to_thread(assert_marts_equal_the_api, served, duckdb_marts(path))


@pytest.mark.one_server
class TestTwoServicesOneWarehouse:
    """Two services syncing into one warehouse (issue 28, item 5): each into a dataset of
    its own, its instance id; marts built from one are never merged with the other's."""

    async def test_apart(self, served: str, another_service: str, tmp_path: Path) -> None:
        path = tmp_path / "shared.duckdb"
        dest = f"duckdb:///{path}"
        a = await asyncio.to_thread(sync.sync, sync.Service(served), dest)
        b = await asyncio.to_thread(sync.sync, sync.Service(another_service), dest)
        assert a.dataset != b.dataset
        assert (a.rows["orders"], b.rows["orders"]) == (300, 3)
        with duckdb.connect(str(path), read_only=True) as conn:
            for outcome in (a, b):
                [(n,)] = conn.execute(f"SELECT count(*) FROM {outcome.dataset}.orders").fetchall()
                assert n == outcome.rows["orders"]

        warehouse = {"ORDERLENS_WAREHOUSE": str(path)}
        env_a = {**warehouse, "ORDERLENS_DATASET": a.dataset}
        await asyncio.to_thread(dbt_build, "duckdb", env_a, tmp_path)
        await asyncio.to_thread(assert_marts_equal_the_api, served, duckdb_marts(path))

        # B's build into A's marts is stopped before anything runs; A's marts stay.
        env_b = {**warehouse, "ORDERLENS_DATASET": b.dataset}
        mixed = await asyncio.to_thread(dbt, ["build"], "duckdb", env_b, tmp_path)
        assert not mixed.success
        said = [str(r.message) for r in mixed.result or []] + [str(mixed.exception)]
        expected = f"built from dataset {a.dataset}, not {b.dataset}"
        assert any(expected in m and "ORDERLENS_MARTS" in m for m in said), said
        assert not [r for r in mixed.result or [] if r.node.resource_type in ("model", "test")]
        await asyncio.to_thread(assert_marts_equal_the_api, served, duckdb_marts(path))

        # In a schema of their own, B's marts are B's figures.
        env_b["ORDERLENS_MARTS"] = "analytics_b"
        await asyncio.to_thread(dbt_build, "duckdb", env_b, tmp_path)
        marts_b = duckdb_marts(path, "analytics_b")
        await asyncio.to_thread(assert_marts_equal_the_api, another_service, marts_b)
        await asyncio.to_thread(assert_marts_equal_the_api, served, duckdb_marts(path))


def libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq URL (dlt, psycopg) and dbt's environment for the test server's database."""
    host = str(url.query.get("host") or url.host or "127.0.0.1")
    port = str(url.port or url.query.get("port") or 5432)
    user = url.username or "postgres"
    password = url.password or ""
    auth = f"{user}:{password}@" if password else f"{user}@"
    if host.startswith("/"):
        dsn = f"postgresql://{auth}localhost:{port}/{url.database}?host={host}"
    else:
        dsn = f"postgresql://{auth}{host}:{port}/{url.database}"
    env = {
        "WAREHOUSE_PG_HOST": host,
        "WAREHOUSE_PG_PORT": port,
        "WAREHOUSE_PG_USER": user,
        "WAREHOUSE_PG_PASSWORD": password,
        "WAREHOUSE_PG_DATABASE": str(url.database),
    }
    return dsn, env


# On PostgreSQL, the sample's first build and its marts against the API are the first
# step of TestIncrementalBuilds.test_on_postgres (and of the pipeline's PostgreSQL test).


# Load: (base, destination) → None; check: (base, marts) → None, after the marts are
# compared with the API.
Load = Callable[[str, str], None]
Check = Callable[[str, Marts], None]


async def on_duckdb(served: str, tmp_path: Path, load: Load, check: Check) -> None:
    """`load` the service's feeds into a DuckDB warehouse, build the dbt project on it, and
    check its marts: equal to the API, then `check`."""
    path = tmp_path / "warehouse.duckdb"
    await asyncio.to_thread(load, served, f"duckdb:///{path}")
    await asyncio.to_thread(dbt_build, "duckdb", {"ORDERLENS_WAREHOUSE": str(path)}, tmp_path)
    await asyncio.to_thread(assert_marts_equal_the_api, served, duckdb_marts(path))
    await asyncio.to_thread(check, served, duckdb_marts(path))


async def on_postgres(
    served: str, tmp_path: Path, warehouse: URL, load: Load, check: Check
) -> None:
    """The same on a PostgreSQL warehouse."""
    dsn, env = libpq(warehouse)
    await asyncio.to_thread(load, served, dsn)
    await asyncio.to_thread(dbt_build, "postgres", env, tmp_path)
    await asyncio.to_thread(assert_marts_equal_the_api, served, postgres_marts(dsn))
    await asyncio.to_thread(check, served, postgres_marts(dsn))


def sync_through_text_ids(base: str, destination: str) -> None:
    """The sample, then coded products and lines in a later, incremental sync."""
    run = sync.Service(base)
    sync.sync(run, destination, dataset=RAW)
    post(base, "products", CODED_PRODUCTS, params=TEXT)
    post(base, "orders", CODED_ORDERS, params=TEXT)
    sync.sync(run, destination, dataset=RAW)


def assert_codes_come_through(base: str, marts: Marts) -> None:
    """Each coded product and line shows its code beside its (negative) key; integer ids
    none."""
    coded = [
        (r["order_code"], r["product_code"], int(r["quantity"]))
        for r in marts.table("fct_orders", "quantity")
        if int(r["order_id"]) < 0 or int(r["order_id"]) > 9000
    ]
    assert coded == [(None, None, 1), ("L-1", "85123A", 2), ("L-3", "85123A", 60)]
    merged = marts.table("order_full_information", "order_created_date, order_id")
    assert [r["order_code"] for r in merged if int(r["order_id"]) < 0] == ["L-1", "L-3"]
    assert all(r["order_code"] is None for r in merged if int(r["order_id"]) > 0)
    # The coded product leads both bases of top growth, shown by its code as the API does.
    growth = marts.table("product_day_over_day_growth", 'growth DESC, "date", product_id')
    for basis in ("calendar", "previous_sale"):
        [top, *_] = [r for r in growth if r["basis"] == basis]
        assert (top["product_code"], int(top["growth"])) == ("85123A", 58), basis
        [api] = httpx.get(
            f"{base}/insights/top-growth", params={"limit": 1, "basis": basis}, timeout=30
        ).json()["items"]
        assert api["product_id"] == "85123A"
    features = marts.table("product_demand_features", 'product_id, "date"')
    assert {r["product_code"] for r in features if int(r["product_id"]) < 0} == {"85123A"}
    assert {r["product_code"] for r in features if int(r["product_id"]) > 0} == {None}
    prices = marts.table("dim_product_prices", "product_id, valid_from")
    assert [r["product_code"] for r in prices if int(r["product_id"]) < 0] == ["85123A"]


class TestDbtWithTextIds:
    """Coded products and lines through an incremental sync: the marts equal the API,
    which shows them by their codes, and carry the codes beside the keys."""

    @pytest.mark.one_server
    async def test_on_duckdb(self, served: str, tmp_path: Path) -> None:
        await on_duckdb(served, tmp_path, sync_through_text_ids, assert_codes_come_through)

    @pytest.mark.one_server  # a PostgreSQL warehouse on every version: TestIncrementalBuilds
    async def test_on_postgres(self, served: str, tmp_path: Path, warehouse_db: URL) -> None:
        await on_postgres(
            served, tmp_path, warehouse_db, sync_through_text_ids, assert_codes_come_through
        )


# Price history (issue 27), set between syncs: each dated price ends the one before it (a
# row the warehouse already has changes with no upload of its own), and some orders carry
# the price they were charged.
DATED_PRICES = (
    b"id,name,category,price,effective_from\n1,Product_1,Shoes,100.00,2024-11-01\n",
    b"id,name,category,price,effective_from\n"
    b"1,Product_1,Shoes,150.00,2024-11-15\n2,Product_2,Shoes,1.00,2024-11-20\n",
)
CHARGED = (
    b"id,product_id,quantity,created_date,unit_price\n"
    b"9001,1,2,2024-11-20,3.25\n9002,1,1,2024-11-20,\n9003,2,4,2024-11-02,0.50\n"
)


def sync_through_price_changes(base: str, destination: str) -> None:
    run = sync.Service(base)
    sync.sync(run, destination, dataset=RAW)
    post(base, "products", DATED_PRICES[0], "update")
    sync.sync(run, destination, dataset=RAW)
    post(base, "products", DATED_PRICES[1], "update")
    post(base, "orders", CHARGED)
    sync.sync(run, destination, dataset=RAW)


def assert_history_equals_the_feed(base: str, marts: Marts) -> None:
    response = httpx.get(f"{base}/exports/product_prices.parquet", timeout=30)
    feed = pq.read_table(io.BytesIO(response.content)).to_pylist()
    built = marts.table("dim_product_prices", "product_id, valid_from")
    assert [
        (int(r["product_id"]), r["valid_from"], r["valid_to"], money(r["price"])) for r in built
    ] == sorted((r["product_id"], r["valid_from"], r["valid_to"], money(r["price"])) for r in feed)
    product_1 = [(r["valid_to"], r["applies_from"]) for r in built if r["product_id"] == 1]
    assert len(product_1) == 3  # 100.00, 150.00, and the price of the sample's day
    assert product_1[0][1] is None and product_1[-1][0] is None
    # The orders of product 1 on 2024-11-20: one charged 3.25, one at the list price.
    orders = {
        r["order_id"]: r for r in marts.table("fct_orders", "order_id") if r["order_id"] > 9000
    }
    assert {k: money(r["unit_price"]) for k, r in orders.items()} == {
        9001: "3.25",
        9002: "150.00",
        9003: "0.50",
    }


class TestDbtWithPriceHistory:
    """Orders at the price they were sold at, through incremental syncs."""

    @pytest.mark.one_server
    async def test_on_duckdb(self, served: str, tmp_path: Path) -> None:
        await on_duckdb(
            served, tmp_path, sync_through_price_changes, assert_history_equals_the_feed
        )

    @pytest.mark.one_server  # a PostgreSQL warehouse on every version: TestIncrementalBuilds
    async def test_on_postgres(self, served: str, tmp_path: Path, warehouse_db: URL) -> None:
        await on_postgres(
            served, tmp_path, warehouse_db, sync_through_price_changes,
            assert_history_equals_the_feed,
        )  # fmt: skip


class TestSourceFreshness:
    """`dbt source freshness` passes after a sync and fails when no sync completed for
    longer than the project's thresholds (hours: `freshness_warn_hours`,
    `freshness_error_hours`); each raw row carries when its sync started. On DuckDB and
    on PostgreSQL."""

    @staticmethod
    def _freshness(target: str, env: dict[str, str], work: Path) -> tuple[bool, str]:
        result = dbt(["source", "freshness"], target, env, work)
        [checked] = [r for r in result.result if r.node.name == "syncs"]
        return result.success, str(checked.status)

    async def _check(
        self, served: str, work: Path, destination: str, target: str, env: dict[str, str],
        query: Callable[[str], list[tuple[Any, ...]]],
    ) -> None:  # fmt: skip
        before = dt.datetime.now(dt.UTC)
        await asyncio.to_thread(sync.sync, sync.Service(served), destination, dataset=RAW)
        stamps = query(
            "SELECT DISTINCT _loaded_at FROM orderlens_raw.orders"
            " UNION SELECT DISTINCT _loaded_at FROM orderlens_raw.products"
        )
        [(stamp,)] = stamps  # one sync, one stamp, on every row of every table
        assert before <= stamp <= dt.datetime.now(dt.UTC)
        assert await asyncio.to_thread(self._freshness, target, env, work) == (True, "pass")
        for hours, expected in ((30, (True, "warn")), (72, (False, "error"))):
            query(
                "UPDATE orderlens_raw._dlt_loads"
                f" SET inserted_at = now() - INTERVAL '{hours} hours'"
            )
            assert await asyncio.to_thread(self._freshness, target, env, work) == expected

    @pytest.mark.one_server
    async def test_on_duckdb(self, served: str, tmp_path: Path) -> None:
        path = tmp_path / "warehouse.duckdb"

        def query(sql: str) -> list[tuple[Any, ...]]:
            with duckdb.connect(str(path)) as conn:
                conn.execute(sql)
                return conn.fetchall() if sql.startswith("SELECT") else []

        env = {"ORDERLENS_WAREHOUSE": str(path)}
        await self._check(served, tmp_path, f"duckdb:///{path}", "duckdb", env, query)

    @pytest.mark.one_server  # a PostgreSQL warehouse on every version: TestIncrementalBuilds
    async def test_on_postgres(self, served: str, tmp_path: Path, warehouse_db: URL) -> None:
        dsn, env = libpq(warehouse_db)

        def query(sql: str) -> list[tuple[Any, ...]]:
            with psycopg.connect(dsn, autocommit=True) as conn:
                cursor = conn.execute(sql)
                return cursor.fetchall() if sql.startswith("SELECT") else []

        await self._check(served, tmp_path, dsn, "postgres", env, query)


# Incremental builds (issue 28, item 4): the marts after each sync, built on what they
# held, equal the API, and a build from scratch of the same raw tables.
NEW_AND_MOVED = (
    # 2 orders moved (another product, another day, another quantity), 3 new ones, one on
    # a day after the sample's last.
    b"id,product_id,quantity,created_date\n"
    b"1,11,3,2024-11-02\n2,13,50,2024-11-29\n"
    b"9001,1,2,2024-11-20\n9002,20,1,2024-11-20\n9003,5,7,2024-12-03\n"
)
# A price back-dated into the sample's month (orders already built change price), and the
# product renamed.
REPRICED = b"id,name,category,price,effective_from\n4,Product_4 renamed,Shoes,1.99,2024-11-15\n"
# Every order of product 7 moved to product 8: product 7's cells are left empty.
EMPTIED = b"id,product_id,quantity,created_date\n"
ONE_MORE = b"id,product_id,quantity,created_date\n9100,3,1,2024-11-30\n"

# Mart tables compared with a build from scratch, and the order their rows are read in.
MART_TABLES = {
    "fct_orders": "order_id",
    "product_daily_sales": "product_id, created_date",
    "daily_revenue": '"date"',
    "kpi_product_orders": "position",
    "average_ticket": "orders",
    "product_day_over_day_growth": 'basis, product_id, "date"',
    "product_demand_features": 'product_id, "date"',
    "dim_product_prices": "product_id, valid_from",
}
# Bookkeeping that says when a row was built, not what it holds.
BUILD_COLUMNS = {"_loaded_until", "previous_product_id", "previous_created_date"}


def snapshot(marts: Marts) -> dict[str, Rows]:
    return {
        name: [
            {k: v for k, v in row.items() if k not in BUILD_COLUMNS}
            for row in marts.table(name, order)
        ]
        for name, order in MART_TABLES.items()
    }


def built_last(marts: Marts) -> int:
    """fct_orders' rows the last build wrote."""
    [row] = marts.query(
        "SELECT count(*) AS n FROM analytics.fct_orders"
        " WHERE _loaded_until = (SELECT max(_loaded_until) FROM analytics.fct_orders)"
    )
    return int(row["n"])


async def build_as_it_goes(
    served: str, destination: str, target: str, env: dict[str, str], marts: Marts, work: Path
) -> None:
    run = sync.Service(served)

    async def sync_and_build() -> None:
        await asyncio.to_thread(sync.sync, run, destination, dataset=RAW)
        await asyncio.to_thread(dbt_build, target, env, work)
        await asyncio.to_thread(assert_marts_equal_the_api, served, marts)

    await sync_and_build()
    assert built_last(marts) == 300  # the first build: every order

    await asyncio.to_thread(post, served, "orders", NEW_AND_MOVED, "update")
    await sync_and_build()
    assert built_last(marts) == 5  # the orders that changed, and only those
    [moved] = [r for r in marts.table("fct_orders", "order_id") if r["order_id"] == 1]
    assert (moved["product_id"], moved["previous_product_id"]) == (11, 10)

    await asyncio.to_thread(post, served, "products", REPRICED, "update")
    product_4 = [r for r in marts.table("fct_orders", "order_id") if r["product_id"] == 4]
    await sync_and_build()
    assert built_last(marts) == len(product_4)  # product 4's orders, priced again
    repriced = {
        r["order_id"]: money(r["unit_price"])
        for r in marts.table("fct_orders", "order_id")
        if r["product_id"] == 4
    }
    # The sample's orders are dated before the product's first price of the upload day,
    # so the back-dated price, now its first, holds for all of them.
    assert {money(r["unit_price"]) for r in product_4} != {"1.99"}
    assert set(repriced.values()) == {"1.99"}

    product_7 = [r for r in marts.table("fct_orders", "order_id") if r["product_id"] == 7]
    moved_away = "".join(
        f"{r['order_id']},8,{r['quantity']},{r['created_date']}\n" for r in product_7
    ).encode()
    await asyncio.to_thread(post, served, "orders", EMPTIED + moved_away, "update")
    await sync_and_build()
    cells = marts.table("product_daily_sales", "product_id, created_date")
    assert product_7 and not [c for c in cells if c["product_id"] == 7]

    await sync_and_build()  # nothing changed: nothing built
    assert built_last(marts) == len(product_7)

    # A sync that did not complete (killed between two tables' commits), simulated by
    # forgetting the newest load: the check of completed syncs fails, dbt skips every
    # model, and the marts keep the last complete state (views included: PostgreSQL drops
    # a view with the view it reads). The next sync completes; all is built.
    before = await asyncio.to_thread(snapshot, marts)
    await asyncio.to_thread(post, served, "orders", ONE_MORE)
    await asyncio.to_thread(sync.sync, run, destination, dataset=RAW)
    marts.query(
        "DELETE FROM orderlens_raw._dlt_loads"
        " WHERE load_id = (SELECT max(load_id) FROM orderlens_raw._dlt_loads) RETURNING load_id"
    )
    result = await asyncio.to_thread(dbt, ["build"], target, env, work)
    assert not result.success
    statuses = {r.node.name: str(r.status) for r in result.result}
    assert statuses["orderlens_has_no_rows_incomplete_syncs_"] == "fail"
    skipped = {name for name, status in statuses.items() if status == "skipped"}
    assert {"stg_orders", "stg_products", "fct_orders", "daily_revenue"} <= skipped
    assert await asyncio.to_thread(snapshot, marts) == before
    await sync_and_build()
    assert [r["quantity"] for r in marts.table("fct_orders", "order_id") if r["order_id"] == 9100]

    incremental = await asyncio.to_thread(snapshot, marts)
    result = await asyncio.to_thread(dbt, ["build", "--full-refresh"], target, env, work)
    assert result.success
    assert await asyncio.to_thread(snapshot, marts) == incremental


class TestIncrementalBuilds:
    """A dbt build after every sync (new and moved orders, a back-dated price, a product
    renamed, a product left without orders, nothing at all, a sync that did not complete)
    keeps the marts equal to the API, rebuilds only the orders that changed, and ends
    where a build from scratch does."""

    @pytest.mark.one_server
    async def test_on_duckdb(self, served: str, tmp_path: Path) -> None:
        path = tmp_path / "warehouse.duckdb"
        env = {"ORDERLENS_WAREHOUSE": str(path)}
        await build_as_it_goes(
            served, f"duckdb:///{path}", "duckdb", env, duckdb_marts(path), tmp_path
        )

    async def test_on_postgres(self, served: str, tmp_path: Path, warehouse_db: URL) -> None:
        dsn, env = libpq(warehouse_db)
        await build_as_it_goes(served, dsn, "postgres", env, postgres_marts(dsn), tmp_path)
