"""Assertions and builders that several test modules share."""

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy import URL

from app.main import create_app
from tests.conftest import API_KEY, make_settings
from tests.fx.fake import FX_KEY, FakeFreeCurrencyApi


def app_for(url: URL, tmp_path: Path) -> FastAPI:
    return create_app(make_settings(url, tmp_path))


def fx_app(url: URL, tmp_path: Path, fake: FakeFreeCurrencyApi, **overrides: Any) -> FastAPI:
    """The app with freecurrencyapi as its provider, answered by `fake` (the real client
    code runs over a mock transport)."""
    settings = make_settings(
        url,
        tmp_path,
        fx_provider="freecurrencyapi",
        fx_api_key=FX_KEY,
        fx_api_url="http://fx.test/v1",
        **overrides,
    )
    return create_app(settings, http_transport=fake.transport())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """The app under uvicorn on a real 127.0.0.1 port, in a thread; yields its base URL
    once `/readyz` answers 200. For what only real sockets show (disconnects, the CLI)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


async def upload(
    client: httpx.AsyncClient,
    kind: str,
    content: bytes | str,
    *,
    filename: str = "upload.csv",
    on_conflict: str | None = None,
    api_key: str | None = API_KEY,
    params: dict[str, str] | None = None,
) -> httpx.Response:
    """POST a file to /uploads/{kind} as multipart, the way a browser or curl would."""
    data = content.encode() if isinstance(content, str) else content
    params = {**(params or {}), **({"on_conflict": on_conflict} if on_conflict else {})}
    headers = {"X-API-Key": api_key} if api_key is not None else {}
    return await client.post(
        f"/uploads/{kind}",
        files={"file": (filename, data, "text/csv")},
        params=params,
        headers=headers,
    )


async def multipart_body(
    boundary: str, parts: list[str], *, delay: float = 0.0, filename: str = "upload.csv"
) -> AsyncIterator[bytes]:
    """A multipart body with a `file` field, sent in pieces (no Content-Length), with
    `delay` seconds after each piece of the file: for limits and races."""
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"'
        "\r\nContent-Type: text/csv\r\n\r\n"
    ).encode()
    for part in parts:
        yield part.encode()
        if delay:
            await asyncio.sleep(delay)
    yield f"\r\n--{boundary}--\r\n".encode()


async def post_multipart(
    client: httpx.AsyncClient, kind: str, body: AsyncIterator[bytes], boundary: str
) -> httpx.Response:
    return await client.post(
        f"/uploads/{kind}",
        content=body,
        headers={
            "X-API-Key": API_KEY,
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )


def reading_processes() -> list[int]:
    """Pids of this process's workbook or Parquet readers still alive (issue 25: every
    one is stopped when its upload ends, however it ends)."""
    import psutil

    return [
        child.pid
        for child in psutil.Process().children(recursive=True)
        if child.is_running()
        and child.status() != psutil.STATUS_ZOMBIE
        and any("tabular" in part or "dying_reader" in part for part in child.cmdline())
    ]


def counts(report: dict[str, Any]) -> tuple[int, int, int, int]:
    """An upload report's rows inserted, updated, unchanged and rejected."""
    return (
        report["rows_inserted"],
        report["rows_updated"],
        report["rows_unchanged"],
        report["rows_rejected"],
    )
