"""The incremental warehouse (issue 28, item 4): `orderlens pipeline run --steps sync,dbt`
after a 1,000-order upload, on a service holding 10M orders, against rebuilding every
mart (`dbt build --full-refresh`, what each build did before), side by side.

    .venv/bin/python benchmarks/warehouse/run.py --data DIR --steps load   # once
    .venv/bin/python benchmarks/warehouse/pipeline.py --data DIR [--runs 3]

`DIR` holds the database `run.py --steps load` left (10M orders over 730 days, 1,000
products). The service runs as its own uvicorn process; the warehouse is a DuckDB file in
`DIR` (`--fresh`: made again, by a first sync and build that are timed too). Each run:
1,000 new orders on the last 7 days of the data, spread over every product, uploaded
(and the service's background work after it, the demand-spike check, waited for); then,
each as the user types it, in a subprocess:
- `orderlens pipeline run --steps sync,dbt`, with no PREFECT_API_URL (Prefect starts and
  stops a temporary server of its own, seconds of the figure);
- the same after another 1,000 orders, with PREFECT_API_URL naming a Prefect server
  (`prefect server start`, started once here, as a team that watches its runs has one);
- the same two steps apart, after another 1,000 orders: `orderlens sync`, then
  `dbt build` (its slowest nodes from dbt's run_results.json);
- `dbt build --full-refresh`, every mart from scratch (the baseline).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.common import API_KEY, ROOT, app_server, free_port, upload
from benchmarks.warehouse.run import database, psql_value

BIN = Path(sys.executable).parent


VERBOSE = False


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    if VERBOSE:
        print(f"$ {' '.join(command[:4])} … ({elapsed:.1f} s)\n{done.stderr.strip()}")
    return elapsed, done.stdout


def new_orders(data: Path, url: object, rng: random.Random) -> Path:
    """1,000 orders with new ids, on the data's last 7 days, of any product."""
    highest = int(psql_value(url, "SELECT max(order_id) FROM orders"))
    days = [f"2024-12-{d}" for d in range(24, 31)]
    extra = data / "orders-1k.csv"
    extra.write_text(
        "id,product_id,quantity,created_date\n"
        + "".join(
            f"{highest + i},{rng.randint(1, 1000)},{rng.randint(1, 5)},{rng.choice(days)}\n"
            for i in range(1, 1001)
        )
    )
    return extra


def idle(url: object, timeout: float = 120.0) -> None:
    """Wait until the service's database runs nothing (an upload's background work, such
    as the demand-spike check, would otherwise share the cores with what is timed)."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 2 and time.monotonic() < deadline:
        busy = psql_value(
            url,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND state = 'active' AND pid <> pg_backend_pid()",
        )
        quiet = quiet + 1 if busy == "0" else 0
        time.sleep(0.5)


def slowest_nodes(run_results: Path, n: int = 4) -> str:
    import json

    run = json.loads(run_results.read_text())
    results = run["results"]
    timed_nodes = sorted(results, key=lambda r: -r["execution_time"])[:n]
    models = sum(r["execution_time"] for r in results if r["unique_id"].startswith("model."))
    tests = sum(r["execution_time"] for r in results if r["unique_id"].startswith("test."))
    return (
        f"{len(results)} nodes in {run['elapsed_time']:.1f} s: models {models:.1f} s,"
        f" tests {tests:.1f} s; slowest "
        + ", ".join(
            f"{r['unique_id'].split('.')[2][:40]} {r['execution_time']:.1f} s" for r in timed_nodes
        )
    )


@contextmanager
def prefect_server(env: dict[str, str]) -> Iterator[str]:
    """`prefect server start` on a free loopback port (its own database in a temporary
    PREFECT_HOME, no UI): its API URL."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="prefect-home-") as home:
        server_env = {**env, "PREFECT_HOME": home, "PREFECT_UI_ENABLED": "false"}
        server_env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
        command = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1"]
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            env=server_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        api = f"http://127.0.0.1:{port}/api"
        try:
            deadline = time.monotonic() + 120
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit("prefect server start did not come up")
                time.sleep(0.5)
            yield api
        finally:
            process.terminate()
            process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fresh", action="store_true", help="a new warehouse, built first")
    parser.add_argument("--verbose", action="store_true", help="each command's log")
    args = parser.parse_args()
    global VERBOSE
    VERBOSE = args.verbose
    data: Path = args.data
    warehouse = data / "warehouse.duckdb"
    work = data / "dbt-work"
    if args.fresh:
        warehouse.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)
    env = {
        **os.environ,
        "API_KEY": API_KEY,
        "ORDERLENS_WAREHOUSE": str(warehouse),
        "DO_NOT_TRACK": "1",
    }
    dbt = [str(BIN / "dbt"), "build", "--project-dir", "warehouse", "--profiles-dir", "warehouse"]
    dbt += ["--target", "duckdb", "--target-path", str(work / "target")]
    dbt += ["--log-path", str(work / "logs"), "--quiet"]
    rng = random.Random(28)
    with (
        database(data / "pg", fresh=False) as url,
        app_server(url) as (base, _),
        prefect_server(env) as prefect_api,
    ):
        # The sync and the pipeline load into the service's dataset, its instance id, which
        # they ask it for; dbt run by hand is told it.
        dataset = httpx.get(f"{base}/instance", headers={"X-API-Key": API_KEY}).json()
        dbt_env = {**env, "ORDERLENS_DATASET": dataset["instance_id"]}
        pipeline = [str(BIN / "orderlens"), "pipeline", "run", "--steps", "sync,dbt"]
        pipeline += ["--url", base, "--to", f"duckdb:///{warehouse}"]
        orders = int(psql_value(url, "SELECT count(*) FROM orders"))
        last = psql_value(url, "SELECT max(created_date) FROM orders")
        print(f"service: {orders:,} orders, the last on {last}")
        if args.fresh:
            seconds, out = timed(pipeline, env)
            print(f"first sync and build (every order): {seconds:.1f} s")
            print(out.strip())
        sync = [str(BIN / "orderlens"), "sync", "--url", base, "--to", f"duckdb:///{warehouse}"]
        for run in range(1, args.runs + 1):
            upload(base, "orders", new_orders(data, url, rng))
            idle(url)
            incremental, out = timed(pipeline, env)
            upload(base, "orders", new_orders(data, url, rng))
            idle(url)
            served, _ = timed(pipeline, {**env, "PREFECT_API_URL": prefect_api})
            upload(base, "orders", new_orders(data, url, rng))
            idle(url)
            synced, _ = timed(sync, env)
            built, _ = timed(dbt, dbt_env)
            slowest = slowest_nodes(work / "target" / "run_results.json")
            full, _ = timed([*dbt, "--full-refresh"], dbt_env)
            steps = "; ".join(line.strip() for line in out.splitlines() if line.strip())
            print(
                f"run {run}: pipeline sync,dbt {incremental:.1f} s (with a Prefect server"
                f" {served:.1f} s) | apart: orderlens sync"
                f" {synced:.1f} s, dbt build {built:.1f} s ({slowest}) | dbt build"
                f" --full-refresh {full:.1f} s ({full / incremental:.1f}× the pipeline) | {steps}"
            )


if __name__ == "__main__":
    main()
