"""FX benchmark: what a warm rate cache adds to an answer, and how many provider calls a
burst of concurrent requests makes.

    .venv/bin/python benchmarks/fx/run.py [--requests 1000] [--clients 50] [--ttl 2]

The service runs as its own uvicorn process with FX_PROVIDER=freecurrencyapi pointed at a
fake freecurrencyapi on 127.0.0.1 (this script; it counts the calls it gets). On the
generated sample (20 products, 300 orders) it measures:
- p50/p99 of the same export with USD figures (`fixed_order_full_information.csv`) and
  without (`order_full_information.csv`), sequential requests after a warm-up;
- provider calls per 1,000 `/kpis` requests from 50 concurrent clients, cold start, with
  the latest rate fresh for `--ttl` seconds (so it expires during the run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.common import (
    ROOT,
    app_server,
    clean_work,
    embedded_server,
    free_port,
    time_endpoint,
    upload,
)

FX_KEY = "bench-fx-key"


class FakeProvider(BaseHTTPRequestHandler):
    """freecurrencyapi's /latest, as the real one answers it; counts calls."""

    calls = 0
    lock = threading.Lock()

    def do_GET(self) -> None:
        with FakeProvider.lock:
            FakeProvider.calls += 1
        time.sleep(0.05)  # a provider is never instant
        if self.headers.get("apikey") != FX_KEY:
            self.send_response(401)
            self.end_headers()
            return
        body = json.dumps({"data": {"USD": 0.184965}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


async def burst(base: str, requests: int, clients: int) -> float:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(requests):
            queue.put_nowait(i)

        async def worker() -> None:
            while not queue.empty():
                queue.get_nowait()
                (await client.get("/kpis")).raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--ttl", type=int, default=2)
    args = parser.parse_args()

    fake_port = free_port()
    fake = ThreadingHTTPServer(("127.0.0.1", fake_port), FakeProvider)
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    env = {
        "FX_PROVIDER": "freecurrencyapi",
        "FX_API_KEY": FX_KEY,
        "FX_API_URL": f"http://127.0.0.1:{fake_port}/v1",
        "FX_CACHE_TTL_SECONDS": str(args.ttl),
    }
    try:
        with embedded_server(clean_work("fx-pg")) as url:
            with app_server(url, env=env) as (base, _):
                for kind in ("products", "orders"):
                    upload(base, kind, ROOT / "data" / f"{kind}.csv")
                FakeProvider.calls = 0
                seconds = asyncio.run(burst(base, args.requests, args.clients))
                calls = FakeProvider.calls
                print(
                    f"burst: {args.requests} /kpis requests from {args.clients} concurrent clients,"
                    f" cold cache, TTL {args.ttl} s: {seconds:.1f} s, {calls} provider calls"
                    f" ({calls * 1000 / args.requests:.1f} per 1,000 requests;"
                    f" expiries possible in the run: {int(seconds // args.ttl)})"
                )
            # A long TTL for the latency pairs: the cache stays warm throughout.
            with app_server(url, env={**env, "FX_CACHE_TTL_SECONDS": "3600"}) as (base, _):
                print()
                print("| answer | with USD p50 | p99 | BRL only p50 | p99 | added p50 |")
                print("|---|---|---|---|---|---|")
                with httpx.Client(base_url=base, timeout=60) as client:
                    pairs = [
                        (
                            "/exports/fixed_order_full_information.csv",
                            "/exports/order_full_information.csv",
                        ),
                    ]
                    for usd_path, brl_path in pairs:
                        usd = time_endpoint(client, usd_path, args.requests, warm=20)
                        brl = time_endpoint(client, brl_path, args.requests, warm=20)
                        print(
                            f"| `{usd_path}` vs `{brl_path}` | {usd[0]:.2f} ms | {usd[1]:.2f} ms"
                            f" | {brl[0]:.2f} ms | {brl[1]:.2f} ms | {usd[0] - brl[0]:+.2f} ms |"
                        )
    finally:
        fake.shutdown()


if __name__ == "__main__":
    main()
