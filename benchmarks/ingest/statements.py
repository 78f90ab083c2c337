"""Where a big fast-path orders upload spends its time, statement by statement: each
statement of a file loaded whole, and the summarizer's sums and the rollup sums it makes
of them (`rollups.SUMMARIZE`, numbered), under EXPLAIN ANALYZE; then what it sends early,
copied out and into the rollups, timed.

    .venv/bin/python benchmarks/ingest/statements.py [--file orders-timestamps-unit-prices-baskets.csv]
        [--cpu ROUNDS]

Uses a file that `benchmarks/ingest/run.py` generated (its `--timestamps`,
`--unit-prices` and `--baskets` files are named after them). On a fresh embedded server
the products are uploaded through the service; then, on one connection in a transaction
that is rolled back, the orders file is staged by COPY as the fast path stages it and
each statement the plan prints (`app.uploads.sql`) runs under EXPLAIN ANALYZE, the
insert with `session_replication_role = replica` as the service runs it (the foreign key
checked by set). One process, one connection: what each statement costs alone, not how
the upload's two connections overlap (the service's phase log says that).

`--cpu ROUNDS` runs the same statements plainly, ROUNDS times (each round a transaction
rolled back), and prints each one's median CPU seconds in the server's backend (from
`/proc`, so the server must run on this machine) beside its wall seconds: on a host
whose speed drifts, the CPU a statement takes varies far less than its wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app import db
from app.analytics import rollups
from app.uploads import fixed_offset, whole
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


class _Steps:
    """Runs each statement: under EXPLAIN ANALYZE (printed), or, with `cpu`, plainly,
    its backend's CPU seconds and wall seconds kept per statement (`report`)."""

    def __init__(self, cpu: bool) -> None:
        self.cpu = cpu
        self.taken: defaultdict[str, list[tuple[float, float]]] = defaultdict(list)

    async def run(self, conn: asyncpg.Connection, name: str, statement: str) -> list[Any]:
        """The statement's rows (none under EXPLAIN ANALYZE, which prints its plan)."""
        explain = "" if self.cpu else "EXPLAIN (ANALYZE, COSTS OFF, BUFFERS OFF) "
        async with self.measured(conn, name):
            rows: list[Any] = await conn.fetch(explain + statement)
        if explain:
            print("\n".join(line[0] for line in rows))
            return []
        return rows

    @contextlib.asynccontextmanager
    async def measured(self, conn: asyncpg.Connection, name: str) -> AsyncIterator[None]:
        """Keep the backend's CPU seconds and the wall seconds of what runs inside (without
        `cpu`, print the wall seconds)."""
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        cpu, started = _cpu_seconds(pid), time.perf_counter()
        yield
        wall = time.perf_counter() - started
        self.taken[name].append((_cpu_seconds(pid) - cpu, wall))
        if not self.cpu:
            print(f"\n== {name}: {wall:.2f} s")

    def report(self) -> None:
        for name, taken in self.taken.items():
            cpu = statistics.median(c for c, _ in taken)
            wall = statistics.median(w for _, w in taken)
            each = ", ".join(f"{c:.2f}" for c, _ in taken)
            print(f"{name}: CPU {cpu:.2f} s (wall {wall:.2f} s), median of {len(taken)}: {each}")


def _cpu_seconds(pid: int) -> float:
    """A process's user and system CPU seconds so far (`/proc/PID/stat`)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _run(url: str, path: Path, steps: _Steps) -> None:
    plan = _plan(path)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET jit = off; SET work_mem = '256MB'")
        async with conn.transaction():
            await conn.execute(staging.create(plan))
            columns = ", ".join(staging.copy_columns(plan))
            async with steps.measured(conn, f"COPY into {staging.table(plan)}"):
                with path.open("rb") as fh:
                    fh.readline()
                    await conn.copy_to_table(
                        staging.table(plan), source=fh, columns=columns.split(", "), format="csv"
                    )
            await conn.execute(staging.analyze(plan))
            await conn.execute("SELECT set_config('orderlens.upload_id', '1', true)")
            await steps.run(conn, "whole dates", orders.create_whole_dates(plan))
            await conn.execute(orders.ANALYZE_WHOLE_DATES)
            if prices := orders.create_whole_prices(plan):
                await steps.run(conn, "whole prices", prices)
                await conn.execute(orders.ANALYZE_WHOLE_PRICES)
            verdict = await steps.run(conn, "verdict", orders.verdict(plan))
            rows, units, _, first, last = (
                verdict[0] if verdict else await conn.fetchrow(orders.verdict(plan))
            )
            await fixed_offset.settle(conn, plan, first, last, rows)  # as the upload does
            await conn.execute("SET LOCAL session_replication_role = replica")
            await steps.run(conn, "load_whole", orders.load_whole(plan))
            await conn.execute("SET LOCAL session_replication_role = origin")
            await rollups.open_deltas(conn)
            # The file is whole: the summarizer sums it as such (`sum_new` when it is not).
            cents = await whole.in_cents(conn, plan, units)  # prices in cents where they fit
            await steps.run(conn, "the summarizer's sums", orders.sum_whole(plan, cents=cents))
            for statement in rollups.CREATE_SUMS:
                await conn.execute(statement)
            for number, statement in enumerate(rollups.SUMMARIZE, 1):
                await steps.run(conn, f"the summarizer's cells, statement {number}", statement)
            await _sent_early(conn, steps)
            raise _RolledBack
    except _RolledBack:
        pass
    finally:
        await conn.close()


async def _sent_early(conn: asyncpg.Connection, steps: _Steps) -> None:
    """What the summarizer sends early (`rollups.SENT_EARLY`) and the upload COPYs into
    the rollups after its insert: each query's binary COPY out (the summarizer's side),
    then its COPY in (the upload's), as they run in the service."""
    for query, table, columns in (sent for batch in rollups.SENT_EARLY for sent in batch):
        async with steps.measured(conn, f"sent early into {table}, out"):
            sent = await db.copy_out(conn, query)
        async with steps.measured(conn, f"sent early into {table}, in"):
            await db.copy_held_in(conn, table, sent, columns)


class _RolledBack(Exception):
    """Leaves the transaction, rolling back everything it staged and inserted."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", default="orders-timestamps-unit-prices-baskets.csv")
    parser.add_argument("--cpu", type=int, default=0, metavar="ROUNDS")
    args = parser.parse_args()
    path = DATA / args.file
    if not path.exists():
        raise SystemExit(f"{path} is missing: run benchmarks/ingest/run.py with its options first")
    with embedded_server(clean_work("statements")) as url:
        with app_server(url) as (base, _):
            upload(base, "products", DATA / "products.csv")
        steps = _Steps(cpu=args.cpu > 0)
        for _ in range(max(args.cpu, 1)):
            asyncio.run(_run(db.asyncpg_dsn(url), path, steps))
        steps.report()


if __name__ == "__main__":
    main()
