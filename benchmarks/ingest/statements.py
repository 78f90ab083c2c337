"""Where a big fast-path orders upload spends its time, statement by statement: each
statement of a file loaded whole, and the summarizer's sums and the rollup sums it makes
of them (`rollups.SUMMARIZE`, numbered), under EXPLAIN ANALYZE; then what it sends early,
copied out and into the rollups, timed.

    .venv/bin/python benchmarks/ingest/statements.py [--file orders-timestamps-unit-prices-baskets.csv]

Uses a file that `benchmarks/ingest/run.py` generated (its `--timestamps`,
`--unit-prices` and `--baskets` files are named after them). On a fresh embedded server
the products are uploaded through the service; then, on one connection in a transaction
that is rolled back, the orders file is staged by COPY as the fast path stages it and
each statement the plan prints (`app.uploads.sql`) runs under EXPLAIN ANALYZE, the
insert with `session_replication_role = replica` as the service runs it (the foreign key
checked by set). One process, one connection: what each statement costs alone, not how
the upload's two connections overlap (the service's phase log says that).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app import db
from app.analytics import rollups
from app.uploads.models import OnConflict, UploadKind
from app.uploads.plan import Plan, StagingPath
from app.uploads.sql import orders, staging
from benchmarks.common import WORK, app_server, clean_work, embedded_server, upload

DATA = WORK / "data-1000p-1000000o-730d"


def _plan(path: Path) -> Plan:
    with path.open() as fh:
        order = tuple(fh.readline().strip().split(","))
    return Plan(
        UploadKind.ORDERS, OnConflict.REJECT, StagingPath.FAST, order, 1, len(order),
        stored_in_range=False, unique_ids=True, sum_aside=True, keys_by_set=True,
    )  # fmt: skip


async def _explain(conn: asyncpg.Connection, name: str, statement: str, *args: object) -> None:
    started = time.perf_counter()
    lines = await conn.fetch("EXPLAIN (ANALYZE, COSTS OFF, BUFFERS OFF) " + statement, *args)
    print(f"\n== {name}: {time.perf_counter() - started:.2f} s")
    print("\n".join(line[0] for line in lines))


async def _run(url: str, path: Path) -> None:
    plan = _plan(path)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET jit = off; SET work_mem = '256MB'")
        async with conn.transaction():
            await conn.execute(staging.create(plan))
            columns = ", ".join(staging.copy_columns(plan))
            started = time.perf_counter()
            with path.open("rb") as fh:
                fh.readline()
                await conn.copy_to_table(
                    staging.table(plan), source=fh, columns=columns.split(", "), format="csv"
                )
            print(f"== COPY into {staging.table(plan)}: {time.perf_counter() - started:.2f} s")
            await conn.execute(staging.analyze(plan))
            await conn.execute("SELECT set_config('orderlens.upload_id', '1', true)")
            await _explain(conn, "whole dates", orders.create_whole_dates(plan))
            await conn.execute(orders.ANALYZE_WHOLE_DATES)
            if prices := orders.create_whole_prices(plan):
                await _explain(conn, "whole prices", prices)
                await conn.execute(orders.ANALYZE_WHOLE_PRICES)
            await _explain(conn, "verdict", orders.verdict(plan))
            await conn.execute("SET LOCAL session_replication_role = replica")
            await _explain(conn, "load_whole", orders.load_whole(plan))
            await conn.execute("SET LOCAL session_replication_role = origin")
            await rollups.open_deltas(conn)
            # The file is whole: the summarizer sums it as such (`sum_new` when it is not).
            await _explain(conn, "the summarizer's sums", orders.sum_whole(plan))
            for statement in rollups.CREATE_SUMS:
                await conn.execute(statement)
            for number, statement in enumerate(rollups.SUMMARIZE, 1):
                await _explain(conn, f"the summarizer's cells, statement {number}", statement)
            await _sent_early(conn)
            raise _RolledBack
    except _RolledBack:
        pass
    finally:
        await conn.close()


async def _sent_early(conn: asyncpg.Connection) -> None:
    """What the summarizer sends early (`rollups.SENT_EARLY`) and the upload COPYs into
    the rollups after its insert: each query's binary COPY out (the summarizer's side),
    then its COPY in (the upload's), as they run in the service."""
    for query, table, columns in rollups.SENT_EARLY:
        started = time.perf_counter()
        sent = await db.copy_out(conn, query)
        out = time.perf_counter() - started
        started = time.perf_counter()
        status = await db.copy_held_in(conn, table, sent, columns)
        took = time.perf_counter() - started
        print(f"\n== sent early into {table}: out {out:.2f} s, in {took:.2f} s ({status})")


class _RolledBack(Exception):
    """Leaves the transaction, rolling back everything it staged and inserted."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", default="orders-timestamps-unit-prices-baskets.csv")
    args = parser.parse_args()
    path = DATA / args.file
    if not path.exists():
        raise SystemExit(f"{path} is missing: run benchmarks/ingest/run.py with its options first")
    with embedded_server(clean_work("statements")) as url:
        with app_server(url) as (base, _):
            upload(base, "products", DATA / "products.csv")
        asyncio.run(_run(db.asyncpg_dsn(url), path))


if __name__ == "__main__":
    main()
