"""Warehouse benchmark (issue 17): the Parquet change feeds at scale, and what one machine
does with 10M orders.

    .venv/bin/python benchmarks/warehouse/run.py --data DIR [--runs 2]

`--data` holds `products.csv` and `orders.csv` made by
`data/generate.py --products 1000 --orders 10000000 --days 730 --seed 7 --start=2023-01-01`
(outside the repository). On one tuned embedded PostgreSQL (its folder under
`--data`/pg; without `--data`, the data is generated under benchmarks/.work), it loads both through `POST /uploads/*` (the service as its own uvicorn
process), then measures, side by side:
- ingest rows/s of the orders upload, and the database's size on disk;
- `/healthz`, `/kpis`, `/insights/*` latency (p50 of 5 after one warm-up);
- full exports: `GET /exports/orders.parquet` and `order_full_information.parquet`
  against `psql \\copy (the same SELECT) TO '/dev/null' (FORMAT csv)`, alternately,
  rows/s and the ratio, with the service's peak memory growth while it streams;
  the CSV export `/exports/order_full_information.csv` for reference;
- incremental: after a 1,000-order upload, `?since=` the cursor taken before it.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--data", type=Path, help="a folder with products.csv and orders.csv (else generated)"
    )
    parser.add_argument("--runs", type=int, default=2)
    data_options(parser, orders=10_000_000)
    args = parser.parse_args()
    data: Path = args.data or dataset(args)
    with embedded_server(data / "pg") as url, app_server(url) as (base, process):
        client = httpx.Client(base_url=base, timeout=3600)
        upload(base, "products", data / "products.csv")
        started = time.perf_counter()
        report = upload(base, "orders", data / "orders.csv")
        seconds = time.perf_counter() - started
        rows = int(str(report["rows_inserted"]))
        print(f"ingest: {rows:,} orders in {seconds:.1f} s = {rows / seconds:,.0f} rows/s")
        psql(url, "-c", "VACUUM ANALYZE")
        size = psql_value(url, "SELECT pg_database_size(current_database())")
        orders_size = psql_value(url, "SELECT pg_total_relation_size('orders')")
        print(
            f"disk: database {int(size) / 1e9:.2f} GB, orders with indexes {int(orders_size) / 1e9:.2f} GB"
        )

        for path in READS:
            p50, p99 = time_endpoint(client, path, 5)
            print(f"read {path}: p50 {p50:.1f} ms, p99 {p99:.1f} ms")

        for feed, query in (("orders", COPY_ORDERS), ("order_full_information", COPY_OFI)):
            ours, theirs, growth = [], [], 0.0
            for _ in range(args.runs):
                with PeakRss(process) as rss:
                    elapsed, size_bytes, _ = download(client, f"/exports/{feed}.parquet")
                ours.append(elapsed)
                growth = max(growth, rss.growth_mb)
                theirs.append(psql(url, "-c", f"\\copy ({query}) TO '/dev/null' (FORMAT csv)"))
            n = rows  # every order, in either feed
            ours_rate, theirs_rate = n / statistics.median(ours), n / statistics.median(theirs)
            print(
                f"export {feed}.parquet: {statistics.median(ours):.1f} s ({ours_rate:,.0f} rows/s,"
                f" {size_bytes / 1e6:.0f} MB) vs psql \\copy TO csv {statistics.median(theirs):.1f} s"
                f" ({theirs_rate:,.0f} rows/s): {ours_rate / theirs_rate:.2f}× its rows/s;"
                f" service memory growth {growth:.0f} MB; runs {ours} / {theirs}"
            )
        elapsed, size_bytes, _ = download(client, "/exports/order_full_information.csv")
        print(f"export order_full_information.csv: {elapsed:.1f} s ({rows / elapsed:,.0f} rows/s)")

        cursors = {
            feed: download(client, f"/exports/{feed}.parquet?start=2099-01-01")[2]
            for feed in ("orders", "order_full_information")
        }
        extra = data / "orders-1k.csv"
        extra.write_text(
            "id,product_id,quantity,created_date\n"
            + "".join(f"{rows + i},{1 + i % 1000},1,2024-12-31\n" for i in range(1, 1001))
        )
        upload(base, "orders", extra)
        for feed, cursor in cursors.items():
            timings = [
                download(client, f"/exports/{feed}.parquet?since={cursor}")[0] for _ in range(5)
            ]
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
