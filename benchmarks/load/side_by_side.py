"""Two checkouts of the service side by side on one database: does a change move reads?

    .venv/bin/python -m benchmarks.load.side_by_side --old /work/wt/old \\
        --dir /tmp/reads-1m [--rounds 3] [--seconds 5] [--connections 32]

`--dir` is a directory that `benchmarks/load/run.py` built and loaded (its embedded
PostgreSQL). `--old` is another checkout (`git worktree add /work/wt/old <ref>`), whose
code runs on this checkout's environment (`common.app_server`). Both serve the same
database at once, one `uvicorn app.main:app` process each, logging as `orderlens serve` does
(LOG_LEVEL INFO). For each endpoint, `wrk` runs against each service in turn (old first
on even rounds, new first on odd ones): req/s and p99 per run, and new ÷ old of the
medians. An endpoint written with ` ~` asks a new random period each request (run.py's
wrk script, seeded by the round, the same for both), so that no answer is a kept one;
without it, the answer is kept after its first request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import statistics
import subprocess
from pathlib import Path

import httpx

from app import db
from benchmarks.common import ROOT, app_server
from benchmarks.load.run import FIRST_DAY, RANDOM_PERIODS

PATHS = (
    "/healthz",
    "/kpis",
    "/kpis ~",
    "/insights/average-ticket ~",
    "/orders?limit=100 ~",
    "/insights/daily-revenue ~",
)
UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
# Each round draws other periods (a seed per round, the same for both services): else
# every round would ask the periods of the first again, kept answers by then.
SEEDED = "init = function(args) math.randomseed(tonumber(args[1])) end\n"


def wrk(base: str, path: str, args: argparse.Namespace, seed: int) -> tuple[float, float]:
    """req/s and p99 (ms) of `wrk` on `path`."""
    command = ["wrk", "-t1", f"-c{args.connections}", f"-d{args.seconds}s", "--timeout", "2s"]
    command.append("--latency")
    if path.endswith(" ~"):
        command += ["-s", str(args.dir / "random-periods-seeded.lua")]
    command.append(base + path.removesuffix(" ~"))
    out = subprocess.run([*command, "--", str(seed)], capture_output=True, text=True)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out.stdout)
    if rps is None or p99 is None:
        raise SystemExit(f"wrk said: {out.stdout}{out.stderr}")
    return float(rps[1]), float(p99[1]) * UNITS_MS[p99[2]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", type=Path, required=True, help="the other checkout")
    parser.add_argument("--dir", type=Path, required=True, help="run.py's loaded directory")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--days", type=int, default=730, help="the days run.py loaded")
    args = parser.parse_args()
    when = {"year": FIRST_DAY.year, "month": FIRST_DAY.month, "day": FIRST_DAY.day}
    script = RANDOM_PERIODS % {**when, "days": args.days} + SEEDED
    (args.dir / "random-periods-seeded.lua").write_text(script)
    database = db.start_embedded(args.dir / "pg")
    url = asyncio.run(db.ensure_database(database.url, "orderlens_load"))
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    try:
        with contextlib.ExitStack() as services:
            servers = {}
            for name, root in (("old", args.old.resolve()), ("new", ROOT)):
                log = args.dir / f"side-{name}.log"
                service = app_server(url, root=root, env={"LOG_LEVEL": "INFO"}, log=log)
                servers[name], _ = services.enter_context(service)
                httpx.get(f"{servers[name]}/fx/rates/latest", timeout=60).raise_for_status()
            for round_ in range(args.rounds):
                for path in PATHS:
                    for name in ("old", "new") if round_ % 2 == 0 else ("new", "old"):
                        rps, p99 = wrk(servers[name], path, args, seed=round_ + 1)
                        results.setdefault((path, name), []).append((rps, p99))
                        print(round_, path, name, round(rps), round(p99, 1), flush=True)
    finally:
        database.release()
    print("\n| endpoint | old req/s | new req/s | new ÷ old (medians) | old p99 ms | new p99 ms |")
    print("|---|---|---|---|---|---|")
    for path in PATHS:
        old, new = results[(path, "old")], results[(path, "new")]
        ratio = statistics.median(r for r, _ in new) / statistics.median(r for r, _ in old)
        cells = [", ".join(f"{r:,.0f}" for r, _ in runs) for runs in (old, new)]
        p99s = [", ".join(f"{p:.1f}" for _, p in runs) for runs in (old, new)]
        print(f"| `{path}` | {cells[0]} | {cells[1]} | {ratio:.2f} | {p99s[0]} | {p99s[1]} |")


if __name__ == "__main__":
    main()
