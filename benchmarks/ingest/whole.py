"""A whole file's statements against `orders.load`, on one connection, without HTTP.

    DATABASE_URL=… .venv/bin/python benchmarks/ingest/whole.py [--runs 5]

(run it through `.ci/on-postgres BINDIR` for a throwaway server of any version). On the
generated 1M orders staged once per run, it times, alternately, in a transaction rolled
back each time: `orders.load` (judge every row, keep the judged rows, insert), and what
a file whose every row passes runs instead (`whole.load_whole`: its dates, the verdict,
`orders.load_whole`). The summarizer's sums are not part of either. Prints each side's
seconds, sorted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import asyncpg
from sqlalchemy import URL, make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app import db
from app.analytics import rollups
from app.uploads import whole
from app.uploads.models import OnConflict, UploadKind
from app.uploads.plan import Plan, StagingPath
from app.uploads.sql import bookkeeping, orders, staging
from benchmarks.common import data_options, data_rows, dataset

ORDER = ("id", "product_id", "quantity", "created_date")
PLAN = Plan(
    UploadKind.ORDERS, OnConflict.REJECT, StagingPath.FAST, ORDER, 1, 4,
    stored_in_range=False, unique_ids=True, sum_aside=True, keys_by_set=True,
)  # fmt: skip


async def _stage(conn: asyncpg.Connection, folder: Path) -> None:
    await conn.execute("SET LOCAL work_mem = '256MB'")
    await conn.execute(bookkeeping.SET_LOCAL_UPLOAD, "1")
    await conn.execute(staging.create(PLAN))
    await conn.copy_to_table(
        staging.TYPED_ORDERS,
        source=data_rows(folder / "orders.csv"),
        columns=list(ORDER),
        format="csv",
    )
    await conn.execute(bookkeeping.SKIP_KEY_TRIGGERS)
    await conn.execute(orders.CREATE_CHECKED)
    await rollups.open_deltas(conn)


async def main(args: argparse.Namespace, url: URL) -> None:
    folder = dataset(args)
    conn = await asyncpg.connect(db.asyncpg_dsn(url), server_settings={"jit": db.JIT})
    await conn.execute("TRUNCATE orders, products CASCADE")
    columns = ["product_id", "name", "category", "price"]
    await conn.copy_to_table(
        "products", source=data_rows(folder / "products.csv"), columns=columns, format="csv"
    )
    await conn.execute("ANALYZE products")
    await conn.execute(
        "INSERT INTO uploads (upload_id, kind, on_conflict) VALUES (1, 'orders', 'reject')"
    )
    print(await conn.fetchval("SELECT version()"))
    seconds: dict[str, list[float]] = {"load": [], "whole": []}
    for _ in range(args.runs):
        for side in seconds:
            await conn.execute("CHECKPOINT")
            transaction = conn.transaction()
            await transaction.start()
            await _stage(conn, folder)
            started = time.perf_counter()
            if side == "load":
                await conn.fetch(orders.load(PLAN), PLAN.header_lines)
            else:
                assert await whole.load_whole(conn, PLAN) is not None
            seconds[side].append(time.perf_counter() - started)
            await transaction.rollback()  # nothing kept: the next run starts alike
            await conn.execute("VACUUM orders")
    for side, times in seconds.items():
        print(side, " ".join(f"{t:.2f}" for t in sorted(times)), "s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    data_options(parser, orders=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    database = make_url(os.environ["DATABASE_URL"])
    db.upgrade(database)  # alembic runs its own event loop: before ours
    asyncio.run(main(parser.parse_args(), database))
