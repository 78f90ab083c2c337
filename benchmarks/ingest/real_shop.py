"""The real shop's whole export through the service, as its analyst would load it.

    .venv/bin/python benchmarks/ingest/real_shop.py [--runs 1]

`../shared/data/online_retail/online_retail.parquet` (541,909 order lines: text stock
codes, invoices as baskets, timestamps without a zone, the unit price charged, returns
as negative quantities). A products file is made from its codes and descriptions (each
code's highest price as its list price, from the first invoice day), uploaded with
`?ids=text`; then the export itself, unchanged, with its header mapped by `?columns=`.
Beside it, once per run, `psql \\copy` of the same lines written as CSV into a plain
table of the export's own columns (no keys, no checks): the floor of loading the bytes.
Prints each upload's time, its counts and reject codes, and what the rollups hold
against the lines' own sums (revenue at the prices charged, invoices per day).
"""

from __future__ import annotations

import argparse
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.analytics.models import ROLLUP_TABLES
from benchmarks.common import ROOT, app_server, clean_work, embedded_server, psql, upload

ROLLUPS = ", ".join(ROLLUP_TABLES)

SOURCE = ROOT.parent / "shared" / "data" / "online_retail" / "online_retail.parquet"
MAPPING = (
    "order_id=InvoiceNo,product_id=StockCode,quantity=Quantity,created_date=InvoiceDate,"
    "unit_price=UnitPrice"
)
PLAIN_TABLE = """
DROP TABLE IF EXISTS shop_lines;
CREATE TABLE shop_lines (invoice_no text, stock_code text, description text, quantity int,
    invoice_date timestamp, unit_price numeric(12, 2), customer_id text, country text);
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    work = clean_work("real-shop")
    lines = pq.read_table(SOURCE)
    codes = lines.group_by("StockCode").aggregate([("Description", "max"), ("UnitPrice", "max")])
    catalogue = pa.table(
        {
            "id": codes["StockCode"],
            "name": pc.fill_null(codes["Description_max"], "(no description)"),
            "category": pa.array(["Retail"] * codes.num_rows),
            "price": pc.max_element_wise(codes["UnitPrice_max"], 0.0),
        }
    )
    products = work / "products.parquet"
    pq.write_table(catalogue, products)
    as_csv = work / "lines.csv"
    pacsv.write_csv(lines, as_csv)
    rows = lines.to_pylist()
    sold = [r for r in rows if r["Quantity"] > 0]
    print(f"{len(rows):,} lines, {codes.num_rows:,} stock codes, {len(sold):,} with a quantity > 0")

    with embedded_server(work / "pg") as url, app_server(url) as (base, _):
        for run in range(1, args.runs + 1):
            psql(
                url, "-c", f"TRUNCATE products, orders, product_prices, uploads, {ROLLUPS} CASCADE"
            )
            psql(url, "-c", PLAIN_TABLE)
            started = time.perf_counter()
            made = upload(
                base, "products", products, {"ids": "text", "effective_from": "2010-12-01"}
            )
            products_s = time.perf_counter() - started
            started = time.perf_counter()
            report = upload(base, "orders", SOURCE, {"ids": "text", "columns": MAPPING})
            orders_s = time.perf_counter() - started
            copy_s = psql(url, "-c", f"\\copy shop_lines from '{as_csv}' csv header")
            print(
                f"run {run}: products {products_s:.2f} s ({made['rows_inserted']:,} inserted,"
                f" {made['rows_rejected']:,} rejected); orders {orders_s:.2f} s"
                f" ({report['rows_inserted']:,} inserted, {report['rows_rejected']:,} rejected:"
                f" {report['rejects_by_code']}); psql \\copy of the lines {copy_s:.2f} s"
            )
        charged = sum(Decimal(str(r["UnitPrice"])) * r["Quantity"] for r in sold)
        invoices = len({(r["InvoiceNo"], r["InvoiceDate"].date()) for r in sold})
        print(
            f"the sold lines' own sums (rejects included): revenue {charged}, invoices per day {invoices:,}"
        )
        import asyncio

        import asyncpg

        async def held() -> tuple[Decimal, int, Decimal, int]:
            conn = await asyncpg.connect(url.render_as_string(hide_password=False).replace(
                "postgresql+asyncpg", "postgresql"))  # fmt: skip
            try:
                row = await conn.fetchrow(
                    "SELECT (SELECT sum(revenue_brl) FROM daily_sales),"
                    " (SELECT sum(orders) FROM daily_sales),"
                    " (SELECT sum(quantity * unit_price) FROM orders),"
                    " (SELECT count(DISTINCT (basket, created_date)) FROM orders)"
                )
                return row[0], row[1], row[2], row[3]
            finally:
                await conn.close()

        revenue, orders, stored, baskets = asyncio.run(held())
        print(f"rollups: revenue {revenue}, orders {orders:,}")
        print(f"the stored lines: revenue {stored}, invoices per day {baskets:,}")


if __name__ == "__main__":
    main()
