"""A fake freecurrencyapi on a real 127.0.0.1 port, for services in other processes
(several workers), where tests/fx/fake.py's in-process transport cannot reach."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.fx.fake import ASSESSMENT_RATE, FX_KEY


@dataclass
class FakeFxServer:
    """Answers `GET /v1/latest` with `rate` after `delay` seconds; counts every call."""

    rate: str = ASSESSMENT_RATE
    delay: float = 0.0
    calls: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def count(self, path: str) -> int:
        with self.lock:
            return sum(1 for c in self.calls if c == path)


def _handler(fake: FakeFxServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            with fake.lock:
                fake.calls.append(parts.path)
            if fake.delay:
                time.sleep(fake.delay)
            query = parse_qs(parts.query)
            if self.headers.get("apikey") != FX_KEY:
                self._answer(401, {"message": "Invalid authentication credentials"})
            elif query.get("base_currency") != ["BRL"] or query.get("currencies") != ["USD"]:
                self._answer(422, {"message": "bad parameters"})
            elif parts.path == "/v1/latest":
                # A bare JSON number, as the provider writes it.
                body = f'{{"data": {{"USD": {fake.rate}}}}}'.encode()
                self._send(200, body)
            else:
                self._answer(404, {"message": "not found"})

        def _answer(self, status: int, body: object) -> None:
            self._send(status, json.dumps(body).encode())

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet: the test says what it needs

    return Handler


@contextmanager
def fake_fx_server(**values: object) -> Iterator[FakeFxServer]:
    """The fake, listening on a free 127.0.0.1 port (`url` is its /v1 base) until exit."""
    fake = FakeFxServer(**values)  # type: ignore[arg-type]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
