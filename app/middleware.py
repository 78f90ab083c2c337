"""Request ids, one access line and the HTTP metrics of every request: a pure ASGI
middleware around the whole app.

Pure ASGI rather than Starlette's BaseHTTPMiddleware: messages pass through one by one,
so streamed CSV answers and uploads are never buffered and the app still sees the
client's disconnect. It wraps even Starlette's ServerErrorMiddleware, so the 500 answers
rendered there (and any other) carry the request id and are logged with their real status.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import logs
from app.errors import database_gone
from app.metrics import Metrics, route_label

log = logging.getLogger("app.access")

REQUEST_ID_HEADER = "X-Request-ID"
_HEADER = REQUEST_ID_HEADER.lower().encode()
# Accepted from the client as is: bounded, and safe in a log line, a header and a URL.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:=+/@-]{1,128}")
# Status of a request whose client went away before any answer was sent (as nginx logs).
CLIENT_CLOSED = 499
LOGGED_PATH_CHARS = 200


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's X-Request-ID when well formed, otherwise a new one."""
    for name, value in headers:
        if name.lower() == _HEADER:
            text = value.decode("latin-1")
            if REQUEST_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


def loggable_path(path: str) -> str:
    """The path without control characters (no forged log lines), bounded in length."""
    clean = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in path)
    if len(clean) > LOGGED_PATH_CHARS:
        clean = clean[:LOGGED_PATH_CHARS] + "…"
    return clean


class RequestMiddleware:
    """Gives each HTTP request an id (header `X-Request-ID` in, out, and on its log
    records), then writes its access line and HTTP metrics once it is answered."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = request_id(scope.get("headers", []))
        header = (_HEADER, rid.encode())
        status = CLIENT_CLOSED
        sent = 0
        complete = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, sent, complete
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [h for h in message.get("headers", ()) if h[0].lower() != _HEADER]
                message = {**message, "headers": [*headers, header]}
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                complete = True

        with logs.bound(request_id=rid):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as exc:
                # Starlette re-raises what its catch-all answered; a database that went
                # away has had its whole 503 by then, and letting it on would make uvicorn
                # close a kept-alive connection that a client's next request may be on.
                if not (complete and database_gone(exc)):
                    raise
            finally:
                self._done(scope, rid, status, sent, time.perf_counter() - started)

    def _done(self, scope: Scope, rid: str, status: int, sent: int, seconds: float) -> None:
        method: str = scope["method"]
        route = route_label(scope)
        self.metrics.request_done(method, route, status, seconds)
        if not log.isEnabledFor(logging.INFO):
            return
        path = loggable_path(scope["path"])
        duration_ms = round(seconds * 1000, 1)
        # The path without its query string: queries may carry what must not be logged.
        log.info(
            "%s %s %s %.1fms %dB",
            method,
            path,
            status,
            duration_ms,
            sent,
            extra={
                "request_id": rid,
                "method": method,
                "route": route,
                "path": path,
                "status": status,
                "duration_ms": duration_ms,
                "bytes": sent,
            },
        )


def install(app: FastAPI, metrics: Metrics) -> None:
    """Put RequestMiddleware outside everything, ServerErrorMiddleware included (which
    `add_middleware` cannot: user middleware goes inside it)."""
    build: Callable[[], ASGIApp] = app.build_middleware_stack

    def build_with_requests() -> ASGIApp:
        return RequestMiddleware(build(), metrics)

    app.build_middleware_stack = build_with_requests  # type: ignore[method-assign]
