"""Load benchmark: every read endpoint under many clients, against /healthz in the same run.

    flock /tmp/orderlens-cpu.lock .venv/bin/python benchmarks/load/run.py \\
        --dir /tmp/reads-bench [--orders 10000000] [--seconds 10] [--cold 7] \\
        [--workers 4] [--log-level INFO] [--skip-cold]

Builds (once, kept in `--dir`, outside the repository) `--orders` orders × `--products`
products × `--days` days with data/generate.py, loads them through the API into an
embedded PostgreSQL under `--dir` (later runs migrate it and reuse it), then serves them
from one `uvicorn app.main:app` process (as `orderlens serve` runs one worker) and
measures, on the same server, in one run:
- warm: `wrk` (Debian's `apt-get install -y wrk`) at 1 and 32 connections for each read
  endpoint, JSON and CSV, and `/healthz` at the same levels before and after, as the
  ceiling: req/s, p50, p99, errors and time-outs (wrk's 2 s time-out). Each 32-connection
  run starts right after an upload of one order: every kept answer is dropped, so its
  first requests are 32 misses at once, as readers meet every upload;
- cold: the first request of each endpoint after an upload (one new order, so the data
  version moves and every kept answer is gone), `--cold` uploads, each followed by one
  request per endpoint; period endpoints take a new random period each time; and the
  time of those one-order uploads;
- memory: the service's resident memory before and after the warm runs, and the bytes of
  the answers it keeps (the sum of their bodies).

The service logs as `orderlens serve` does (LOG_LEVEL INFO: an access line per request),
to `--dir/service.log`. Each wrk row also gives the service's own account of its stalls
during the run, from `/metrics`: event-loop lag samples (one every 0.1 s) past 10 and
50 ms, and garbage collections past 10 ms. The last rows ask each request for a new
random period (a wrk script), so that no answer is a kept one.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import re
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
from sqlalchemy import URL

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app import db
from benchmarks.common import API_KEY, ROOT, app_server, generate, percentiles, psql, upload

DATABASE = "orderlens_load"
FIRST_DAY = date(2023, 1, 1)
PERIOD = "start=2023-06-01&end=2023-12-31"

# Warm runs: (label, path). CSV of /orders streams every matching row, so its CSV run
# asks for one day (about 14,000 rows), a file a BI tool might poll.
WARM = [
    ("/kpis", "/kpis"),
    ("/kpis with a period", f"/kpis?{PERIOD}"),
    ("/insights/average-ticket", "/insights/average-ticket"),
    ("/insights/daily-revenue", "/insights/daily-revenue"),
    ("/insights/top-growth", "/insights/top-growth"),
    ("/insights/top-growth?basis=previous_sale", "/insights/top-growth?basis=previous_sale"),
    ("/orders?limit=100", "/orders?limit=100"),
]
CSV_ORDERS = "/orders?start=2024-12-30&end=2024-12-30"
# Warm runs whose every request asks for a new random period: no answer is kept, each is
# computed (the rollups read) while 31 others are.
RANDOM = [
    ("/kpis, a random period each", "/kpis"),
    ("/insights/daily-revenue, a random period each", "/insights/daily-revenue"),
    ("/insights/top-growth, a random period each", "/insights/top-growth"),
]

# Cold runs: (label, path, takes a random period).
COLD = [
    ("/kpis", "/kpis", False),
    ("/kpis?start&end", "/kpis", True),
    ("/insights/average-ticket?start&end", "/insights/average-ticket", True),
    ("/insights/daily-revenue?start&end", "/insights/daily-revenue", True),
    ("/insights/top-growth?start&end", "/insights/top-growth", True),
    (
        "/insights/top-growth?basis=previous_sale&start&end",
        "/insights/top-growth?basis=previous_sale",
        True,
    ),
    ("/orders?limit=100&start&end (CSV: one day)", "/orders?limit=100", True),
]


def with_query(path: str, query: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}{query}" if query else path


def csv_path(path: str) -> str:
    return with_query(CSV_ORDERS if path.startswith("/orders") else path, "format=csv")


# --- the data -------------------------------------------------------------------------------


def prepare(args: argparse.Namespace) -> tuple[URL, db.Database]:
    """The embedded server under --dir with the data loaded (loaded once, then migrated)."""
    folder: Path = args.dir
    data = folder / "data"
    generate(data, products=args.products, orders=args.orders, days=args.days)
    database = db.start_embedded(folder / "pg")
    url = asyncio.run(db.ensure_database(database.url, DATABASE))
    marker = folder / f"loaded-{args.products}p-{args.orders}o-{args.days}d"
    if marker.exists():
        db.upgrade(url)
        return url, database
    psql(url, "-c", "DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    db.upgrade(url)
    with app_server(url) as (base, _):
        upload(base, "products", data / "products.csv")
        started = time.perf_counter()
        report = upload(base, "orders", data / "orders.csv")
        print(f"loaded {report['rows_inserted']:,} orders in {time.perf_counter() - started:.0f} s")
    psql(url, "-c", "VACUUM ANALYZE")
    marker.write_text("loaded\n")
    return url, database


# --- wrk ------------------------------------------------------------------------------------

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([0-9.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


# A wrk script that asks each request for a new random period of the data's days (the
# answer is then never a kept one): `path` gets `start` and `end` appended.
RANDOM_PERIODS = """
local first = os.time{year=%(year)d, month=%(month)d, day=%(day)d, hour=12}
request = function()
  local a = math.random(0, %(days)d - 1)
  local b = math.random(a, %(days)d - 1)
  local sep = string.find(wrk.path, "?", 1, true) and "&" or "?"
  local path = wrk.path .. sep .. "start=" .. os.date("!%%Y-%%m-%%d", first + a * 86400)
    .. "&end=" .. os.date("!%%Y-%%m-%%d", first + b * 86400)
  return wrk.format(nil, path)
end
"""


WRK_THREADS = 2
# Unmeasured wrk seconds per endpoint and format before the measured runs, with several
# workers: each worker's first request of an endpoint (its pool's connections opened,
# their statements prepared, PostgreSQL's caches of the tables filled) is a start-up
# cost, measured by the cold phase, not the load's.
WARM_UP_SECONDS = 2
# wrk's scheduling priority (`nice`): on a 2-core machine that runs the service, its
# database and wrk, a starved wrk reads answers late and counts its own wait as theirs.
WRK_NICE = 0


AUTOGROUP = Path("/proc/sys/kernel/sched_autogroup_enabled")


def _autogroup() -> str:
    """Whether Linux schedules each session (setsid) as one group: then wrk and the
    service (one session), and the database server (pg_ctl makes it a session of its
    own) share the cores group by group, not process by process (RESULTS, "Issue 25:
    the scheduler's groups")."""
    if not AUTOGROUP.exists():
        return "no sched_autogroup_enabled"
    return f"sched_autogroup_enabled={AUTOGROUP.read_text().strip()}"


def wrk(
    base: str, path: str, connections: int, seconds: int, script: Path | None = None
) -> dict[str, float]:
    command = ["nice", "-n", str(WRK_NICE), "wrk", f"-t{min(WRK_THREADS, connections)}"]
    command += [f"-c{connections}", f"-d{seconds}s"]
    command += ["--timeout", "2s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    before = stalls(base)
    out = subprocess.run([*command, base + path], check=True, capture_output=True, text=True).stdout
    found = {
        "rps": float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": _ms(re.search(r"\s50%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
        "p99": _ms(re.search(r"\s99%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
        "errors": 0.0,
        "timeouts": 0.0,
    }
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        found["errors"] += float(m.group(1))
    if m := re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        found["errors"] += float(m.group(1)) + float(m.group(2)) + float(m.group(3))
        found["timeouts"] = float(m.group(4))
    after = stalls(base)
    found.update({k: after[k] - before[k] for k in after})
    return found


def stalls(base: str) -> dict[str, float]:
    """The service's own account of its stalls (GET /metrics, summed over its workers):
    event-loop lag samples past 10 and 50 ms, garbage collections past 10 ms."""
    from prometheus_client.parser import text_string_to_metric_families

    text_ = httpx.get(f"{base}/metrics", timeout=10).text
    samples = [s for f in text_string_to_metric_families(text_) for s in f.samples]

    def past(name: str, le: str) -> float:
        bucket = [s for s in samples if s.name == f"{name}_bucket"]
        total = sum(s.value for s in bucket if s.labels["le"] == "+Inf")
        return total - sum(s.value for s in bucket if s.labels["le"] == le)

    lag = "orderlens_event_loop_lag_seconds"
    wait = "orderlens_answer_version_wait_seconds"
    return {
        "lag10": past(lag, "0.01"),
        "lag50": past(lag, "0.05"),
        "gc10": past("orderlens_gc_pause_seconds", "0.01"),
        "wait10": past(wait, "0.01"),
        "wait50": past(wait, "0.05"),
    }


def row(label: str, fmt: str, c: int, r: dict[str, float], ceiling: float) -> str:
    return (
        f"| `{label}` | {fmt} | {c} | {r['rps']:,.0f} | {r['rps'] / ceiling:.0%} |"
        f" {r['p50']:.2f} ms | {r['p99']:.2f} ms | {r['errors']:.0f} / {r['timeouts']:.0f} |"
        f" {r['lag10']:.0f} / {r['lag50']:.0f} | {r['gc10']:.0f} |"
        f" {r['wait10']:.0f} / {r['wait50']:.0f} |"
    )


# --- cold -----------------------------------------------------------------------------------


def random_period(rng: random.Random, days: int) -> str:
    first = rng.randrange(days)
    last = rng.randrange(first, days)
    start, end = FIRST_DAY + timedelta(first), FIRST_DAY + timedelta(last)
    return f"start={start.isoformat()}&end={end.isoformat()}"


def one_order(base: str, order_id: int, rng: random.Random, args: argparse.Namespace) -> None:
    day = FIRST_DAY + timedelta(rng.randrange(args.days))
    content = (
        "id,product_id,quantity,created_date\n"
        f"{order_id},{rng.randint(1, args.products)},{rng.randint(1, 5)},{day.isoformat()}\n"
    )
    response = httpx.post(
        f"{base}/uploads/orders",
        files={"file": ("one.csv", content.encode(), "text/csv")},
        headers={"X-API-Key": API_KEY},
        timeout=60,
    )
    response.raise_for_status()


def cold(base: str, args: argparse.Namespace) -> dict[tuple[str, str], list[float]]:
    """Each endpoint's first request after an upload (and, under ("upload", ""), the
    uploads of one order themselves: what keeping the rollups costs a small upload)."""
    rng = random.Random(7)
    samples: dict[tuple[str, str], list[float]] = {}
    with httpx.Client(base_url=base, timeout=60) as client:
        for n in range(args.cold):
            started = time.perf_counter()
            one_order(base, args.orders * 10 + n + 1, rng, args)
            samples.setdefault(("upload", ""), []).append(time.perf_counter() - started)
            for label, path, periodic in COLD:
                query = random_period(rng, args.days) if periodic else ""
                for fmt, target in (("JSON", path), ("CSV", csv_path(path))):
                    # CSV of /orders streams every row of its period: its one day stays.
                    if not (fmt == "CSV" and path.startswith("/orders")):
                        target = with_query(target, query)
                    started = time.perf_counter()
                    client.get(target).raise_for_status()
                    samples.setdefault((label, fmt), []).append(time.perf_counter() - started)
    return samples


# --- the run --------------------------------------------------------------------------------


def print_cold(base: str, args: argparse.Namespace) -> None:
    print("\n## Cold: the first request of each endpoint after an upload\n")
    print("| endpoint | format | p50 | p99 |")
    print("|---|---|---|---|")
    samples = cold(base, args)
    uploads = samples.pop(("upload", ""))
    for (label, fmt), seconds in samples.items():
        p50, p99 = percentiles(seconds)
        print(f"| `{label}` | {fmt} | {p50:.1f} ms | {p99:.1f} ms |")
    p50, p99 = percentiles(uploads)
    print(
        f"\nuploads of one order (a random day; the rollups rewritten from it on):"
        f" p50 {p50:.0f} ms, p99 {p99:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dir", type=Path, required=True, help="data and server, kept")
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--products", type=int, default=1_000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--seconds", type=int, default=10, help="per wrk run at 32 connections")
    parser.add_argument("--cold", type=int, default=7, help="uploads for the cold figures")
    parser.add_argument("--prepare-only", action="store_true", help="build and load, no runs")
    parser.add_argument(
        "--log-level", default="INFO", help="the service's LOG_LEVEL (INFO: as `orderlens serve`)"
    )
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument(
        "--skip-cold", action="store_true", help="no cold phase (the warm runs' uploads stay)"
    )
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="the checkout whose service runs (another: before)"
    )
    args = parser.parse_args()

    url, database = prepare(args)
    if args.prepare_only:
        database.release()
        return
    try:
        with app_server(
            url,
            env={"LOG_LEVEL": args.log_level},
            workers=args.workers,
            log=args.dir / "service.log",
            root=args.root,
        ) as (base, service):
            httpx.get(f"{base}/fx/rates/latest", timeout=60).raise_for_status()
            print(f"data: {args.orders:,} orders × {args.products:,} products × {args.days} days")
            print(f"service: {args.workers} process(es), LOG_LEVEL={args.log_level}")
            print(f"kernel: {_autogroup()}")
            if not args.skip_cold:
                print_cold(base, args)

            rss_before = service.memory_info().rss
            kept = 0
            with httpx.Client(base_url=base, timeout=60) as client:
                for _, path in WARM:
                    for target in (path, csv_path(path)):
                        kept += len(client.get(target).content)
            short = max(2, args.seconds // 2)
            if args.workers > 1:
                # The client above and the 1-connection runs below reach one worker (one
                # connection is one worker's): with several, the others would meet each
                # endpoint for the first time in its measured run, right after an upload.
                # Every worker asks each once here, as one process did above.
                for _, path in WARM:
                    for target in (path, csv_path(path)):
                        wrk(base, target, 32, WARM_UP_SECONDS)
            ceiling = {c: wrk(base, "/healthz", c, args.seconds) for c in (1, 32)}
            print(f"\n## Warm: wrk, {args.workers} process(es)\n")
            print(
                "| endpoint | format | connections | req/s | of /healthz | p50 | p99 |"
                " errors / time-outs | loop lag > 10 / > 50 ms | GC > 10 ms |"
                " version waits > 10 / > 50 ms |"
            )
            print("|---|---|---|---|---|---|---|---|---|---|---|")
            for c in (1, 32):
                print(row("/healthz", "JSON", c, ceiling[c], ceiling[c]["rps"]))
            rng = random.Random(11)
            # New ids each run (the time), so that each upload inserts and moves the version.
            uploads = itertools.count(args.orders * 20 + int(time.time()) * 1000)
            for label, path in WARM:
                for fmt, target in (("JSON", path), ("CSV", csv_path(path))):
                    for c in (1, 32):
                        if c > 1:
                            # Every kept answer dropped: the run's first requests all miss.
                            one_order(base, next(uploads), rng, args)
                        result = wrk(base, target, c, args.seconds if c > 1 else short)
                        print(row(label, fmt, c, result, ceiling[c]["rps"]))
            script = args.dir / "random-periods.lua"
            script.write_text(
                RANDOM_PERIODS
                % {
                    "year": FIRST_DAY.year,
                    "month": FIRST_DAY.month,
                    "day": FIRST_DAY.day,
                    "days": args.days,
                }
            )
            for label, path in RANDOM:
                for fmt, target in (("JSON", path), ("CSV", with_query(path, "format=csv"))):
                    result = wrk(base, target, 32, args.seconds, script)
                    print(row(label, fmt, 32, result, ceiling[32]["rps"]))
            after = {c: wrk(base, "/healthz", c, args.seconds) for c in (1, 32)}
            for c in (1, 32):
                print(row("/healthz (again, at the end)", "JSON", c, after[c], ceiling[c]["rps"]))
            rss_after = service.memory_info().rss
            print(
                f"\nmemory: {len(WARM) * 2} answers kept, {kept / 1e6:.2f} MB of bodies;"
                f" resident memory {rss_before / 1e6:.0f} MB before the warm runs,"
                f" {rss_after / 1e6:.0f} MB after"
            )
    finally:
        database.release()


if __name__ == "__main__":
    main()
