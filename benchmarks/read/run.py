"""Read benchmark: the read endpoints at 10M orders against the assessment's SQL.

    .venv/bin/python benchmarks/read/run.py [--orders 10000000] [--requests 30]

Loads the generated orders through `POST /uploads/orders` (so the rollups are the ones
ingest keeps), then measures, on the same server:
- p50/p99 of each read endpoint over HTTP (sequential requests, warm FX cache), next to
  the assessment's SQL for the same figure run directly on `orders` ⋈ `products`;
- the full `/exports/fixed_order_full_information.csv` download next to `psql \\copy` of
  the same query to a file, with the service's peak memory growth.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app import db
from benchmarks.common import (
    WORK,
    PeakRss,
    app_server,
    clean_work,
    data_options,
    dataset,
    embedded_server,
    percentiles,
    psql,
    time_endpoint,
    upload,
)

ENDPOINTS = [
    "/kpis",
    "/kpis?start=2023-06-01&end=2023-12-31",
    "/insights/daily-revenue",
    "/insights/average-ticket",
    "/insights/top-growth",
    "/insights/top-growth?basis=previous_sale",
    "/orders?limit=100",
]

# What the assessment's scripts ran, written as plain SQL on the base tables.
ASSESSMENT_SQL = {
    "/kpis": [
        "SELECT created_date, count(*) FROM orders GROUP BY created_date"
        " ORDER BY count(*) DESC, created_date LIMIT 1",
        "SELECT p.name, sum(o.quantity) q, sum(o.quantity * p.price) FROM orders o"
        " JOIN products p USING (product_id) GROUP BY p.product_id, p.name"
        " ORDER BY q DESC, p.product_id LIMIT 1",
        "SELECT p.category, sum(o.quantity) q FROM orders o JOIN products p USING (product_id)"
        " GROUP BY p.category ORDER BY q DESC, p.category LIMIT 3",
    ],
    "/insights/daily-revenue": [
        "SELECT o.created_date, count(*), sum(o.quantity), sum(o.quantity * p.price)"
        " FROM orders o JOIN products p USING (product_id) GROUP BY o.created_date"
        " ORDER BY o.created_date"
    ],
    "/insights/average-ticket": [
        "SELECT count(*), sum(o.quantity * p.price) / count(*) FROM orders o"
        " JOIN products p USING (product_id)"
    ],
    "/insights/top-growth?basis=previous_sale": [
        "WITH d AS (SELECT product_id, created_date, sum(quantity) q FROM orders"
        " GROUP BY product_id, created_date),"
        " g AS (SELECT product_id, created_date, q - lag(q) OVER"
        " (PARTITION BY product_id ORDER BY created_date) AS growth FROM d)"
        " SELECT * FROM g WHERE growth IS NOT NULL ORDER BY growth DESC, created_date,"
        " product_id LIMIT 1"
    ],
}

EXPORT_SQL = """SELECT o.created_date, o.order_id, p.name, o.quantity, o.quantity * p.price,
round(o.quantity * p.price * {rate}, 2) FROM orders o JOIN products p ON
p.product_id = o.product_id ORDER BY o.created_date, o.order_id"""


async def time_sql(url: str, statements: list[str], n: int) -> tuple[float, float]:
    conn = await asyncpg.connect(url)
    try:
        for sql in statements:
            await conn.fetch(sql)  # warm
        samples = []
        for _ in range(n):
            started = time.perf_counter()
            for sql in statements:
                await conn.fetch(sql)
            samples.append(time.perf_counter() - started)
    finally:
        await conn.close()
    return percentiles(samples)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    data_options(parser, orders=10_000_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--sql-runs", type=int, default=5)
    args = parser.parse_args()

    data = dataset(args)
    print(f"data: {args.orders:,} orders, {args.products:,} products, {args.days} days")

    with embedded_server(clean_work("read-pg")) as url, app_server(url) as (base, service):
        upload(base, "products", data / "products.csv")
        started = time.perf_counter()
        report = upload(base, "orders", data / "orders.csv")
        load_s = time.perf_counter() - started
        print(f"loaded through the API in {load_s:.1f} s ({report['rows_inserted']:,} rows)")
        psql(url, "-c", "VACUUM ANALYZE")
        dsn = db.asyncpg_dsn(url)

        print()
        print("| endpoint | Orderlens p50 | p99 | assessment SQL p50 | p99 | ratio of p50s |")
        print("|---|---|---|---|---|---|")
        with httpx.Client(base_url=base, timeout=600) as client:
            client.get("/fx/rates/latest").raise_for_status()
            for path in ENDPOINTS:
                ours = time_endpoint(client, path, args.requests)
                sql = ASSESSMENT_SQL.get(path)
                theirs = asyncio.run(time_sql(dsn, sql, args.sql_runs)) if sql else None
                if theirs:
                    print(
                        f"| `{path}` | {ours[0]:.1f} ms | {ours[1]:.1f} ms | {theirs[0]:.0f} ms"
                        f" | {theirs[1]:.0f} ms | {ours[0] / theirs[0]:.3f} |"
                    )
                else:
                    print(f"| `{path}` | {ours[0]:.1f} ms | {ours[1]:.1f} ms | | | |")

            rate = client.get("/fx/rates/latest").json()["rate"]
            with PeakRss(service) as rss:
                started = time.perf_counter()
                size = 0
                with client.stream("GET", "/exports/fixed_order_full_information.csv") as response:
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                ours_s = time.perf_counter() - started
        out = WORK / "export-psql.csv"
        query = " ".join(EXPORT_SQL.format(rate=rate).split())
        theirs_s = psql(url, "-c", f"\\copy ({query}) TO '{out}' csv")
        psql_size = out.stat().st_size
        out.unlink()
        print()
        print("| export of every order | seconds | MB | MB/s |")
        print("|---|---|---|---|")
        print(
            f"| Orderlens `/exports/fixed_order_full_information.csv` (HTTP) | {ours_s:.1f} | {size / 1e6:.0f} | {size / 1e6 / ours_s:.0f} |"
        )
        print(
            f"| `psql \\copy (same query) TO file` | {theirs_s:.1f} | {psql_size / 1e6:.0f} | {psql_size / 1e6 / theirs_s:.0f} |"
        )
        print(f"throughput ratio Orderlens / psql: {(size / ours_s) / (psql_size / theirs_s):.2f}")
        print(f"service peak memory growth during the export: {rss.growth_mb:.0f} MB")


if __name__ == "__main__":
    main()
