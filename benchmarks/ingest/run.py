"""Ingest benchmark: a large orders upload through HTTP against `psql \\copy`.

    .venv/bin/python benchmarks/ingest/run.py [--orders 1000000] [--runs 3]

On one tuned embedded PostgreSQL it loads the same generated orders, alternately (each
timed load starts from empty tables after a CHECKPOINT, and is followed, untimed, by a
VACUUM ANALYZE so that autovacuum does not run into the next one):
- through Orderlens (`POST /uploads/orders`, streamed over HTTP from this process to the
  service running as its own uvicorn process): validation, quarantine and rollups included;
- with `psql \\copy` into the assessment's constrained schema (PK, FK, CHECKs, indexes);
and, once, the assessment's approach (pandas `read_csv` + `to_sql(method="multi")`) on
`--pandas-rows` rows. It prints rows/s, the ratio of the medians and the service's peak
memory growth during the uploads. `--one-connection` runs the service without its
summarizer (the upload sums its rollups on its own connection); `--id-twice` gives
Orderlens the file with its first row repeated at the end; `--quoted` gives both the
same file with every field quoted and CRLF line ends, as Excel writes it (psql reads it
with `\\copy … (FORMAT csv)`). `--dialect` gives Orderlens the same rows in another
dialect or format, psql their plain UTF-8 comma twin: `semicolon-cp1252` (`;`, CRLF,
posted with `?encoding=cp1252` so that every byte goes through the decoder), `parquet`
(row groups of 128K rows), `xlsx` (a workbook written once by xlsxwriter; slow to make).
`--timestamps` gives both the same file with every `created_date` a date-time with
seconds and an offset (`2024-11-06T14:03:27-03:00`, nearly every value distinct, as real
exports write them); psql's `date` column takes its date as written, Orderlens its date
in BUSINESS_TIMEZONE. `--unit-prices` gives both the same file with a `unit_price` column
(the price charged, a few hundred distinct values; psql into the assessment's table with
a `numeric(12, 2)` column added for it); with `--timestamps`, both. `--baskets` adds an
`order_id` column (the row's id // 3: three lines per order; psql into a `text` column).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from sqlalchemy import create_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.analytics.models import ROLLUP_TABLES
from benchmarks.common import (
    ASSESSMENT_SCHEMA,
    PeakRss,
    app_server,
    clean_work,
    data_options,
    dataset,
    embedded_server,
    psql,
    unquote_dates,
    upload,
)

# Every rollup with the orders: leaders (or any rollup) left from the previous run would
# make the next one merge into rows that no longer match its data.
_LOADED = ", ".join(("orders", *ROLLUP_TABLES, "assessment.orders"))
RESET = f"TRUNCATE {_LOADED}; CHECKPOINT;"
# After a timed load, untimed: vacuum and analyze what it wrote, so that autovacuum does
# not pick the tables up during the next timed load (it did, adding 1-2 s at random).
SETTLE = f"VACUUM ANALYZE {_LOADED}"


def quote_fields(src: Path, dst: Path) -> None:
    """The same rows with every field in double quotes and CRLF line ends."""
    if dst.exists():
        return
    with src.open("rb") as fin, dst.open("wb") as fout:
        for line in fin:
            fields = line.rstrip(b"\r\n").split(b",")
            fout.write(b",".join(b'"' + f + b'"' for f in fields) + b"\r\n")


def semicolon_cp1252(src: Path, dst: Path) -> None:
    """The same rows separated by `;` with CRLF line ends, in Windows-1252."""
    if dst.exists():
        return
    with src.open("rb") as fin, dst.open("wb") as fout:
        for line in fin:
            text = line.decode("utf-8").rstrip("\r\n").replace(",", ";")
            fout.write(text.encode("cp1252") + b"\r\n")


def as_parquet(src: Path, dst: Path) -> None:
    """The same rows as Parquet: 64-bit integers, `date32` dates, row groups of 128K."""
    if dst.exists():
        return
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    types = {
        "id": pa.int64(),
        "product_id": pa.int64(),
        "quantity": pa.int64(),
        "created_date": pa.date32(),
    }
    table = pacsv.read_csv(src, convert_options=pacsv.ConvertOptions(column_types=types))
    pq.write_table(table, dst, row_group_size=128 * 1024)


def as_xlsx(src: Path, dst: Path) -> None:
    """The same rows as a workbook: numbers and date cells (xlsxwriter, constant memory)."""
    if dst.exists():
        return
    import datetime

    import xlsxwriter

    book = xlsxwriter.Workbook(str(dst), {"constant_memory": True})
    sheet = book.add_worksheet()
    day = book.add_format({"num_format": "yyyy-mm-dd"})
    with src.open() as fin:
        sheet.write_row(0, 0, fin.readline().strip().split(","))
        for r, line in enumerate(fin, start=1):
            order_id, product_id, quantity, created = line.strip().split(",")
            sheet.write_number(r, 0, int(order_id))
            sheet.write_number(r, 1, int(product_id))
            sheet.write_number(r, 2, int(quantity))
            sheet.write_datetime(r, 3, datetime.date.fromisoformat(created), day)
    book.close()


def with_times(src: Path, dst: Path) -> None:
    """The same rows with each date a date-time: seconds spread over the day by the row's
    position, a São Paulo offset."""
    if dst.exists():
        return
    with src.open() as fin, dst.open("w") as fout:
        fout.write(fin.readline())
        for n, line in enumerate(fin):
            head, created = line.rstrip("\n").rsplit(",", 1)
            second = (n * 7919) % 86400
            clock = f"{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"
            fout.write(f"{head},{created}T{clock}-03:00\n")


def with_column(src: Path, dst: Path, name: str, value: Callable[[int, str], str]) -> None:
    """The same rows with a column `name` added last: `value(n, line)` for the n-th row."""
    if dst.exists():
        return
    with src.open() as fin, dst.open("w") as fout:
        fout.write(f"{fin.readline().rstrip(chr(10))},{name}\n")
        for n, line in enumerate(fin):
            line = line.rstrip("\n")
            fout.write(f"{line},{value(n, line)}\n")


def unit_price(n: int, _: str) -> str:
    """0.50 to 199.99, by the row's position: a few hundred distinct prices."""
    cents = 50 + (n * 7919) % 400 * 49
    return f"{cents // 100}.{cents % 100:02d}"


def basket(_: int, line: str) -> str:
    """Three consecutive lines (by id) per order."""
    return str(100_000 + int(line.split(",", 1)[0]) // 3)


def pandas_to_sql(url: str, path: Path, rows: int) -> float:
    """The assessment's loader: read the CSV with pandas, insert with to_sql in chunks."""
    engine = create_engine(url)
    started = time.perf_counter()
    frame = pd.read_csv(path, nrows=rows)
    frame["created_date"] = pd.to_datetime(frame["created_date"].str.strip("'")).dt.date
    frame = frame.rename(columns={"id": "order_id"})
    # 4 columns × 16,383 rows is PostgreSQL's 65,535-parameter limit; chunk below it.
    frame.to_sql(
        "orders", engine, schema="assessment", if_exists="append", index=False,
        method="multi", chunksize=10_000,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    data_options(parser, orders=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pandas-rows", type=int, default=100_000)
    parser.add_argument(
        "--one-connection",
        action="store_true",
        help="no summarizer: the upload sums its rollups itself (SUMMARIZER_MIN_ROWS above the file)",
    )
    parser.add_argument(
        "--id-twice",
        action="store_true",
        help="Orderlens gets the file with its first row repeated as the last line (psql, "
        "which would refuse it, the clean file): what an id twice costs",
    )
    parser.add_argument(
        "--quoted",
        action="store_true",
        help="both load the same file, every field quoted, CRLF line ends (plain dates)",
    )
    parser.add_argument(
        "--timestamps",
        action="store_true",
        help="both load the same file, every created_date a date-time with an offset",
    )
    parser.add_argument(
        "--unit-prices",
        action="store_true",
        help="both load the same file with a unit_price column (the price charged)",
    )
    parser.add_argument(
        "--baskets",
        action="store_true",
        help="both load the same file with an order_id column (three lines per order)",
    )
    parser.add_argument(
        "--dialect",
        choices=["semicolon-cp1252", "parquet", "xlsx"],
        help="Orderlens gets the rows in this dialect or format, psql the plain UTF-8 CSV",
    )
    args = parser.parse_args()

    data = dataset(args)
    ours_file = data / "orders.csv"
    if args.id_twice:
        ours_file = data / "orders-id-twice.csv"
        text = (data / "orders.csv").read_text()
        first = text.split("\n", 2)[1]
        ours_file.write_text(text + ("" if text.endswith("\n") else "\n") + first + "\n")
    plain = data / "orders-plain-dates.csv"
    unquote_dates(data / "orders.csv", plain)
    if args.quoted:
        ours_file = plain = data / "orders-quoted-crlf.csv"
        quote_fields(data / "orders-plain-dates.csv", plain)
    if args.timestamps:
        ours_file = plain = data / "orders-timestamps.csv"
        with_times(data / "orders-plain-dates.csv", plain)
    if args.unit_prices:
        priced = plain.with_name(plain.stem + "-unit-prices.csv")
        with_column(plain, priced, "unit_price", unit_price)
        ours_file = plain = priced
    if args.baskets:
        basketed = plain.with_name(plain.stem + "-baskets.csv")
        with_column(plain, basketed, "order_id", basket)
        ours_file = plain = basketed
    params: dict[str, str] = {}
    if args.dialect == "semicolon-cp1252":
        ours_file = data / "orders-semicolon-cp1252.csv"
        semicolon_cp1252(plain, ours_file)
        params = {"encoding": "cp1252"}
    elif args.dialect == "parquet":
        ours_file = data / "orders.parquet"
        as_parquet(plain, ours_file)
    elif args.dialect == "xlsx":
        ours_file = data / "orders.xlsx"
        as_xlsx(plain, ours_file)
    size_mb = (data / "orders.csv").stat().st_size / 1e6
    print(
        f"data: {args.orders:,} orders ({size_mb:.1f} MB), {args.products:,} products, {args.days} days"
    )

    env = {"SUMMARIZER_MIN_ROWS": str(args.orders + 1)} if args.one_connection else {}
    with (
        embedded_server(clean_work("ingest-pg")) as url,
        app_server(url, env=env) as (base, service),
    ):
        psql(url, "-c", ASSESSMENT_SCHEMA)
        if args.unit_prices:
            psql(url, "-c", "ALTER TABLE assessment.orders ADD COLUMN unit_price numeric(12, 2)")
        if args.baskets:
            psql(url, "-c", "ALTER TABLE assessment.orders ADD COLUMN basket text")
        psql(url, "-c", f"\\copy assessment.products from '{data / 'products.csv'}' csv header")
        upload(base, "products", data / "products.csv")

        ours: list[float] = []
        theirs: list[float] = []
        growth: list[float] = []
        for run in range(1, args.runs + 1):
            psql(url, "-c", RESET)
            with PeakRss(service) as rss:
                started = time.perf_counter()
                report = upload(base, "orders", ours_file, params)
                ours.append(time.perf_counter() - started)
            growth.append(rss.growth_mb)
            psql(url, "-c", SETTLE)
            assert report["rows_inserted"] == args.orders, report
            print(f"dialect: {report['dialect']}, {ours_file.stat().st_size / 1e6:.1f} MB")
            assert report["rows_rejected"] == args.id_twice, report
            psql(url, "-c", RESET)
            theirs.append(psql(url, "-c", f"\\copy assessment.orders from '{plain}' csv header"))
            psql(url, "-c", SETTLE)
            print(
                f"run {run}: orderlens {ours[-1]:.2f} s ({args.orders / ours[-1]:,.0f} rows/s),"
                f" psql \\copy {theirs[-1]:.2f} s ({args.orders / theirs[-1]:,.0f} rows/s),"
                f" ratio {ours[-1] / theirs[-1]:.2f}, service memory +{growth[-1]:.0f} MB"
            )

        psql(url, "-c", RESET)
        sync_url = url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        pandas_s = pandas_to_sql(sync_url, data / "orders.csv", args.pandas_rows)

    o, t = statistics.median(ours), statistics.median(theirs)
    print()
    print(f"| path | median of {args.runs} | rows/s |")
    print("|---|---|---|")
    print(
        f"| Orderlens POST /uploads/orders (HTTP, validated, rollups) | {o:.2f} s | {args.orders / o:,.0f} |"
    )
    print(
        f"| psql \\copy into the assessment's constrained schema | {t:.2f} s | {args.orders / t:,.0f} |"
    )
    print(
        f"| pandas read_csv + to_sql(method='multi'), {args.pandas_rows:,} rows | {pandas_s:.2f} s | {args.pandas_rows / pandas_s:,.0f} |"
    )
    print()
    pairs = [a / b for a, b in zip(ours, theirs, strict=True)]
    print(
        f"ratio Orderlens / psql \\copy: {o / t:.2f} (medians); per run"
        f" {min(pairs):.2f} to {max(pairs):.2f}, median {statistics.median(pairs):.2f}"
    )
    print(f"service peak memory growth: max {max(growth):.0f} MB over {args.runs} uploads")


if __name__ == "__main__":
    main()
