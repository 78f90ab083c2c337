"""What numbering staged records costs: COPY of the generated 1M orders into a temporary
table of staging's columns, with `ord` an identity with the default cache of one value,
with a cache of `staging.ORD_CACHE`, and with no `ord` at all.

    DATABASE_URL=… .venv/bin/python benchmarks/ingest/numbering.py [--runs 5]

(through `.ci/on-postgres BINDIR` for a throwaway server of any version). Runs alternate;
each in a transaction rolled back. Prints each kind's seconds, sorted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import asyncpg
from sqlalchemy import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app import db
from app.uploads.sql.staging import ORD_CACHE
from benchmarks.common import data_options, data_rows, dataset

COLUMNS = ["id", "product_id", "quantity", "created_date"]
KINDS = {
    "cache of one": "ord bigint GENERATED ALWAYS AS IDENTITY,",
    f"cache of {ORD_CACHE:,}": f"ord bigint GENERATED ALWAYS AS IDENTITY (CACHE {ORD_CACHE}),",
    "no numbering": "",
}


async def main(args: argparse.Namespace) -> None:
    orders = dataset(args) / "orders.csv"
    url = make_url(os.environ["DATABASE_URL"])
    settings = {"jit": db.JIT, "temp_buffers": "256MB"}
    conn = await asyncpg.connect(db.asyncpg_dsn(url), server_settings=settings)
    print(await conn.fetchval("SELECT version()"))
    seconds: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for _ in range(args.runs):
        for kind, ord_column in KINDS.items():
            transaction = conn.transaction()
            await transaction.start()
            await conn.execute(
                f"CREATE TEMP TABLE numbered ({ord_column} id bigint, product_id bigint,"
                " quantity bigint, created_date text) ON COMMIT DROP"
            )
            started = time.perf_counter()
            await conn.copy_to_table(
                "numbered", source=data_rows(orders), columns=COLUMNS, format="csv"
            )
            seconds[kind].append(time.perf_counter() - started)
            await transaction.rollback()
    for kind, times in seconds.items():
        print(f"{kind}:", " ".join(f"{t:.2f}" for t in sorted(times)), "s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    data_options(parser, orders=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(main(parser.parse_args()))
