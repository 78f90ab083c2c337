"""The first answers after an upload: 32 requests at once for an answer every upload
drops, right after each of `--uploads` one-order uploads (issue 25).

    flock /tmp/orderlens-cpu.lock .venv/bin/python benchmarks/load/burst.py \\
        --dir /tmp/reads-bench [--orders 10000000] [--workers 4] [--path /kpis]

Uses the data and server that benchmarks/load/run.py built in `--dir`. Each burst's 32
requests go out together on open connections; prints each burst's p50 and slowest
answer, the data version they were answered at (one per burst: none was older), and,
as the floor, a burst of 32 `/healthz` just before (this client's and the framework's
own cost).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.common import ROOT, app_server
from benchmarks.load.run import one_order, prepare


async def bursts(base: str, args: argparse.Namespace) -> None:
    rng = random.Random(5)
    first_id = args.orders * 30 + int(time.time()) * 1000
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        await asyncio.gather(*(client.get("/healthz") for _ in range(32)))  # connections open

        async def one(path: str) -> tuple[float, str]:
            started = time.perf_counter()
            response = await client.get(path)
            response.raise_for_status()
            return time.perf_counter() - started, response.headers.get("x-data-version", "")

        async def burst(path: str) -> tuple[list[float], list[str]]:
            answers = await asyncio.gather(*(one(path) for _ in range(32)))
            return sorted(s for s, _ in answers), sorted({v for _, v in answers})

        for n in range(args.uploads):
            floor, _ = await burst("/healthz")  # the client's and the framework's own cost
            one_order(base, first_id + n, rng, args)
            seconds, versions = await burst(args.path)
            print(
                f"burst {n + 1}: p50 {seconds[16] * 1000:.0f} ms, slowest"
                f" {seconds[-1] * 1000:.0f} ms, versions {versions}; /healthz burst p50"
                f" {floor[16] * 1000:.0f} ms, slowest {floor[-1] * 1000:.0f} ms",
                flush=True,
            )
            await asyncio.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--products", type=int, default=1_000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--path", default="/kpis")
    parser.add_argument("--uploads", type=int, default=6)
    parser.add_argument("--root", type=Path, default=ROOT)
    args = parser.parse_args()
    url, database = prepare(args)
    try:
        with app_server(
            url,
            env={"LOG_LEVEL": "INFO"},
            workers=args.workers,
            log=args.dir / "service.log",
            root=args.root,
        ) as (base, _):
            print(f"{args.orders:,} orders, {args.workers} process(es), {args.path}")
            asyncio.run(bursts(base, args))
    finally:
        database.release()


if __name__ == "__main__":
    main()
