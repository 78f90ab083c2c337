"""Warehouse benchmark (issue 17): the Parquet change feeds at scale, and what one machine
does with 10M orders.

    .venv/bin/python benchmarks/warehouse/run.py --data DIR [--runs 2] [--steps …]

`--data` holds `products.csv` and `orders.csv` made by
`data/generate.py --products 1000 --orders 10000000 --days 730 --seed 7 --start=2023-01-01`
(outside the repository). On one tuned embedded PostgreSQL (its folder under
`--data`/pg; without `--data`, the data is generated under benchmarks/.work), the service
runs as its own uvicorn process. The steps, all by default:
- `load`: a fresh database, both files through `POST /uploads/*`; ingest rows/s of the
  orders upload, and the database's size on disk. Without `load`, the database a
  previous run loaded is measured as it is (load once, then measure in short steps);
- `reads`: `/healthz`, `/kpis`, `/insights/*` latency (p50 of 5 after one warm-up);
- `exports`: full `GET /exports/orders.parquet` and `order_full_information.parquet`
  against `psql \\copy (the same rows) TO '/dev/null' (FORMAT csv)`, alternately, rows/s
  and the ratio, with the service's peak memory growth while it streams; the CSV export
  `/exports/order_full_information.csv` for reference;
- `incremental`: after a 1,000-order upload (ids above the highest stored), `?since=` the
  cursor taken before it.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
from sqlalchemy import URL

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app import db
from benchmarks.common import (
    PeakRss,
    app_server,
    data_options,
    dataset,
    embedded_server,
    psql,
    time_endpoint,
    upload,
)

COPY_ORDERS = (
    "SELECT o.order_id, o.product_id, o.quantity, o.created_date, o.upload_id FROM orders o"
)
COPY_OFI = (
    "SELECT o.created_date, o.order_id, o.product_id, p.name, p.category, o.quantity, p.price,"
    " o.quantity * p.price FROM orders o JOIN products p ON p.product_id = o.product_id"
)
READS = (
    "/healthz",
    "/kpis",
    "/insights/daily-revenue?limit=1000",
    "/insights/average-ticket",
    "/insights/top-growth?limit=5",
    "/insights/top-growth?limit=5&basis=previous_sale",
)


def download(client: httpx.Client, path: str) -> tuple[float, int, str]:
    """Seconds, bytes and X-Next-Cursor of one streamed GET (body discarded)."""
    started = time.perf_counter()
    size = 0
    with client.stream("GET", path) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes(1 << 20):
            size += len(chunk)
        cursor = response.headers.get("x-next-cursor", "")
    return time.perf_counter() - started, size, cursor


def parquet_rows(client: httpx.Client, path: str) -> int:
    import pyarrow.parquet as pq

    return int(pq.read_metadata(io.BytesIO(client.get(path).content)).num_rows)


STEPS = ("load", "reads", "exports", "incremental")
FEEDS = {"orders": COPY_ORDERS, "order_full_information": COPY_OFI}


@contextmanager
def database(folder: Path, *, fresh: bool) -> Iterator[URL]:
    """The benchmark's database: a fresh one, or the one a previous `load` left."""
    if fresh:
        with embedded_server(folder) as url:
            yield url
        return
    server = db.start_embedded(folder)
    try:
        url = server.url.set(database="orderlens_bench")
        db.upgrade(url)
        yield url
    finally:
        server.release()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--data", type=Path, help="a folder with products.csv and orders.csv (else generated)"
    )
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument(
        "--steps",
        default=",".join(STEPS),
        help=f"comma-separated, of {', '.join(STEPS)} (default: all)",
    )
    parser.add_argument(
        "--feeds", default=",".join(FEEDS), help="the Parquet feeds `exports` measures"
    )
    parser.add_argument(
        "--split",
        type=int,
        default=1,
        help="`load` uploads orders.csv in this many files, one after the other (50M orders"
        " are 1.3 GB, over the default MAX_UPLOAD_BYTES)",
    )
    parser.add_argument(
        "--no-csv", action="store_true", help="`exports` without the CSV export for reference"
    )
    data_options(parser, orders=10_000_000)
    args = parser.parse_args()
    steps = set(args.steps.split(","))
    if not steps <= set(STEPS):
        parser.error(f"--steps: choose among {', '.join(STEPS)}")
    data: Path = args.data or dataset(args)
    with (
        database(data / "pg", fresh="load" in steps) as url,
        app_server(url) as (base, process),
    ):
        client = httpx.Client(base_url=base, timeout=3600)
        if "load" in steps:
            load(base, url, data, split=args.split)
        rows = int(psql_value(url, "SELECT count(*) FROM orders"))
        if "reads" in steps:
            for path in READS:
                p50, p99 = time_endpoint(client, path, 5)
                print(f"read {path}: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        if "exports" in steps:
            # The service imports pyarrow on its first Parquet answer: measured apart, so
            # that the growth below is what streaming holds.
            with PeakRss(process) as rss:
                download(client, "/exports/orders.parquet?start=2099-01-01")
            print(f"first Parquet answer (an empty read, loading pyarrow): +{rss.growth_mb:.0f} MB")
            for feed in args.feeds.split(","):
                export(client, url, process, feed, rows=rows, runs=args.runs)
            if not args.no_csv:
                elapsed, _, _ = download(client, "/exports/order_full_information.csv")
                print(
                    f"export order_full_information.csv: {elapsed:.1f} s"
                    f" ({rows / elapsed:,.0f} rows/s)"
                )
        if "incremental" in steps:
            incremental(client, base, url, data)


def load(base: str, url: URL, data: Path, *, split: int) -> None:
    upload(base, "products", data / "products.csv")
    total_rows, total_seconds = 0, 0.0
    for part in parts(data / "orders.csv", split):
        started = time.perf_counter()
        report = upload(base, "orders", part)
        seconds = time.perf_counter() - started
        rows = int(str(report["rows_inserted"]))
        total_rows, total_seconds = total_rows + rows, total_seconds + seconds
        print(
            f"ingest {part.name}: {rows:,} orders in {seconds:.1f} s = {rows / seconds:,.0f} rows/s"
        )
    print(
        f"ingest: {total_rows:,} orders in {total_seconds:.1f} s"
        f" = {total_rows / total_seconds:,.0f} rows/s"
    )
    psql(url, "-c", "VACUUM ANALYZE")
    size = psql_value(url, "SELECT pg_database_size(current_database())")
    orders_size = psql_value(url, "SELECT pg_total_relation_size('orders')")
    print(
        f"disk: database {int(size) / 1e9:.2f} GB,"
        f" orders with indexes {int(orders_size) / 1e9:.2f} GB"
    )


def parts(orders: Path, split: int) -> list[Path]:
    """`orders` as `split` files of consecutive rows, each with the header (made once)."""
    if split == 1:
        return [orders]
    with orders.open("rb") as fh:
        header = fh.readline()
        rows = sum(1 for _ in fh)
    per = -(-rows // split)
    paths = [orders.with_name(f"orders-part{i + 1}of{split}.csv") for i in range(split)]
    if all(p.exists() for p in paths):
        return paths
    with orders.open("rb") as fh:
        fh.readline()
        for path in paths:
            with path.open("wb") as out:
                out.write(header)
                for _, line in zip(range(per), fh, strict=False):
                    out.write(line)
    return paths


def export(
    client: httpx.Client, url: URL, process: psutil.Process, feed: str, *, rows: int, runs: int
) -> None:
    """A full read of `feed` against psql's CSV of the same rows, alternately."""
    ours, theirs, growth, size_bytes = [], [], [], 0
    for _ in range(runs):
        with PeakRss(process) as rss:
            elapsed, size_bytes, _ = download(client, f"/exports/{feed}.parquet")
        ours.append(elapsed)
        growth.append(round(rss.growth_mb))
        theirs.append(psql(url, "-c", f"\\copy ({FEEDS[feed]}) TO '/dev/null' (FORMAT csv)"))
    ours_rate, theirs_rate = rows / statistics.median(ours), rows / statistics.median(theirs)
    print(
        f"export {feed}.parquet: {statistics.median(ours):.1f} s ({ours_rate:,.0f} rows/s,"
        f" {size_bytes / 1e6:.0f} MB) vs psql \\copy TO csv {statistics.median(theirs):.1f} s"
        f" ({theirs_rate:,.0f} rows/s): {ours_rate / theirs_rate:.2f}× its rows/s;"
        f" service memory growth {max(growth)} MB (per run {growth});"
        f" runs {[round(t, 1) for t in ours]} / {[round(t, 1) for t in theirs]}"
    )


def incremental(client: httpx.Client, base: str, url: URL, data: Path) -> None:
    """After a 1,000-order upload of new ids, `?since=` the cursor taken before it."""
    cursors = {
        feed: download(client, f"/exports/{feed}.parquet?start=2099-01-01")[2]
        for feed in ("orders", "order_full_information")
    }
    highest = int(psql_value(url, "SELECT coalesce(max(order_id), 0) FROM orders"))
    extra = data / "orders-1k.csv"
    extra.write_text(
        "id,product_id,quantity,created_date\n"
        + "".join(f"{highest + i},{1 + i % 1000},1,2024-12-31\n" for i in range(1, 1001))
    )
    upload(base, "orders", extra)
    for feed, cursor in cursors.items():
        timings = [download(client, f"/exports/{feed}.parquet?since={cursor}")[0] for _ in range(5)]
        got = parquet_rows(client, f"/exports/{feed}.parquet?since={cursor}")
        print(
            f"incremental {feed}.parquet after a 1,000-order upload: {got} rows,"
            f" p50 {statistics.median(timings) * 1000:.0f} ms (max {max(timings) * 1000:.0f} ms)"
        )


def psql_value(url: object, sql: str) -> str:
    import subprocess

    from benchmarks.common import libpq_url, psql_path

    out = subprocess.run(
        [psql_path(), libpq_url(url), "-At", "-c", sql],  # type: ignore[arg-type]
        check=True,
        capture_output=True,
        text=True,
    )
    return str(out.stdout).strip()


if __name__ == "__main__":
    main()
