"""What reading workbooks and Parquet files in a process of their own costs (issue 25):
the same 1M-order `.xlsx` and Parquet uploads through the service before and after,
side by side in one run.

    git worktree add /tmp/orderlens-before <commit before the change>
    flock /tmp/orderlens-cpu.lock .venv/bin/python benchmarks/ingest/isolation.py \\
        --before /tmp/orderlens-before [--runs 5] [--dialect xlsx parquet]

One tuned embedded PostgreSQL; two services on it, each its own uvicorn process: this
checkout's code and `--before`'s (the same interpreter and packages). Each run uploads
the file to each service in turn (the order alternates), from empty tables after a
CHECKPOINT, with an untimed VACUUM ANALYZE after each load (as benchmarks/ingest/run.py
does). Prints each upload's time, the medians, their ratio (after / before), and the
services' peak memory growth with the reading process's own peak.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.analytics.models import ROLLUP_TABLES
from benchmarks.common import (
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
from benchmarks.ingest.run import as_parquet, as_xlsx

_LOADED = ", ".join(("orders", *ROLLUP_TABLES))
RESET = f"TRUNCATE {_LOADED}; CHECKPOINT;"
SETTLE = f"VACUUM ANALYZE {_LOADED}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    data_options(parser, orders=1_000_000)
    parser.add_argument("--before", type=Path, required=True, help="a checkout of the code before")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dialect", nargs="+", default=["xlsx", "parquet"])
    args = parser.parse_args()

    data = dataset(args)
    plain = data / "orders-plain-dates.csv"
    unquote_dates(data / "orders.csv", plain)
    files = {"xlsx": data / "orders.xlsx", "parquet": data / "orders.parquet"}
    as_xlsx(plain, files["xlsx"])
    as_parquet(plain, files["parquet"])

    with (
        embedded_server(clean_work("isolation-pg")) as url,
        app_server(url, root=args.before) as before,
        app_server(url) as after,
    ):
        services = {"before": before, "after": after}
        upload(after[0], "products", data / "products.csv")
        for dialect in args.dialect:
            times: dict[str, list[float]] = {"before": [], "after": []}
            growth: dict[str, list[float]] = {"before": [], "after": []}
            child: list[float] = []
            for run in range(args.runs):
                order = ["before", "after"] if run % 2 == 0 else ["after", "before"]
                for name in order:
                    base, process = services[name]
                    psql(url, "-c", RESET)
                    with PeakRss(process) as rss:
                        started = time.perf_counter()
                        report = upload(base, "orders", files[dialect])
                        times[name].append(time.perf_counter() - started)
                    psql(url, "-c", SETTLE)
                    assert report["rows_inserted"] == args.orders, report
                    growth[name].append(rss.growth_mb)
                    if name == "after":
                        child.append(rss.child_peak / 1e6)
                print(
                    f"{dialect} run {run + 1}: before {times['before'][-1]:.2f} s,"
                    f" after {times['after'][-1]:.2f} s"
                    f" ({times['after'][-1] / times['before'][-1]:.2f})",
                    flush=True,
                )
            b, a = statistics.median(times["before"]), statistics.median(times["after"])
            print(
                f"{dialect}: median before {b:.2f} s, after {a:.2f} s, ratio {a / b:.3f};"
                f" service memory growth before {max(growth['before']):.0f} MB,"
                f" after {max(growth['after']):.0f} MB (reading process peak"
                f" {max(child):.0f} MB)"
            )


if __name__ == "__main__":
    main()
