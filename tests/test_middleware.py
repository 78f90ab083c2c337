"""Request ids and access lines (RequestMiddleware): an id on every answer, errors
included; one access line per request; streamed answers still stream through it."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy import URL
from starlette.types import Message, Receive, Scope, Send

from app.main import create_app
from app.metrics import Metrics
from app.middleware import RequestMiddleware, loggable_path, request_id
from tests.conftest import API_KEY, make_settings, open_client
from tests.helpers import upload

GENERATED = re.compile(r"[0-9a-f]{32}")

probe = APIRouter(prefix="/_probe")


@probe.get("/boom")
async def boom() -> None:
    raise RuntimeError("secret internals")


@pytest.fixture
async def probed(app: FastAPI, clean_db: None) -> AsyncIterator[httpx.AsyncClient]:
    app.include_router(probe)
    async for c in open_client(app):
        yield c


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "app.access"]


class TestRequestId:
    async def test_generated_when_absent(self, client: httpx.AsyncClient) -> None:
        first = (await client.get("/healthz")).headers["x-request-id"]
        second = (await client.get("/healthz")).headers["x-request-id"]
        assert GENERATED.fullmatch(first)
        assert GENERATED.fullmatch(second)
        assert first != second

    @pytest.mark.parametrize(
        "incoming",
        ["abc-123", "0f8fad5b-d9cb-469f-a165-70867728950e", "trace:1/2=+@x.y_z", "a" * 128],
    )
    async def test_echoed_when_well_formed(self, client: httpx.AsyncClient, incoming: str) -> None:
        response = await client.get("/healthz", headers={"X-Request-ID": incoming})
        assert response.headers["x-request-id"] == incoming

    @pytest.mark.parametrize(
        "hostile",
        [
            b"a" * 129,  # too long
            b"abc\ndef",  # a forged log line
            b"abc def",
            "caf\u00e9".encode(),  # non-ASCII
            b"<script>",
            b"",
        ],
    )
    async def test_replaced_when_hostile(self, client: httpx.AsyncClient, hostile: bytes) -> None:
        # httpx refuses some of these in a header; the ASGI scope is what the server hands.
        assert GENERATED.fullmatch(request_id([(b"x-request-id", hostile)]))
        if b"\n" not in hostile:
            response = await client.get("/healthz", headers=[(b"X-Request-ID", hostile)])
            assert GENERATED.fullmatch(response.headers["x-request-id"])

    async def test_on_every_error_answer(self, probed: httpx.AsyncClient) -> None:
        answers = [
            await probed.get("/nowhere"),  # 404 from routing
            await probed.get("/uploads/1"),  # 404 upload_not_found
            await probed.get("/uploads/x"),  # 422 validation
            await probed.post("/uploads/orders"),  # 401
            await probed.get("/_probe/boom"),  # 500 from ServerErrorMiddleware
        ]
        assert [a.status_code for a in answers] == [404, 404, 422, 401, 500]
        for answer in answers:
            assert GENERATED.fullmatch(answer.headers["x-request-id"])
        echoed = await probed.get("/_probe/boom", headers={"X-Request-ID": "req-500"})
        assert echoed.headers["x-request-id"] == "req-500"

    async def test_first_header_wins(self) -> None:
        assert request_id([(b"X-Request-ID", b"one"), (b"x-request-id", b"two")]) == "one"


class TestAccessLog:
    async def test_one_line_per_request_with_its_id(
        self, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO, logger="app.access")
        response = await client.get("/uploads/42", headers={"X-Request-ID": "req-42"})
        [record] = access_records(caplog)
        assert record.getMessage().startswith("GET /uploads/42 404 ")
        assert record.request_id == "req-42"  # type: ignore[attr-defined]
        assert record.method == "GET"  # type: ignore[attr-defined]
        assert record.route == "/uploads/{upload_id}"  # type: ignore[attr-defined]
        assert record.status == 404  # type: ignore[attr-defined]
        assert record.bytes == len(response.content)  # type: ignore[attr-defined]
        assert record.duration_ms >= 0  # type: ignore[attr-defined]

        caplog.clear()
        for _ in range(3):
            await client.get("/healthz")
        assert len(access_records(caplog)) == 3

    async def test_500_logged_with_its_real_status(
        self, probed: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO)
        await probed.get("/_probe/boom", headers={"X-Request-ID": "req-boom"})
        [record] = access_records(caplog)
        assert record.status == 500  # type: ignore[attr-defined]
        assert record.request_id == "req-boom"  # type: ignore[attr-defined]

    async def test_no_query_string_and_no_api_key(
        self, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        await client.get("/uploads", params={"cursor": "s3cr3t-token", "limit": 5})
        await upload(client, "products", "id,name,category,price\n1,A,B,1.00\n")
        assert "s3cr3t-token" not in caplog.text
        assert API_KEY not in caplog.text
        assert [r.getMessage().split()[1] for r in access_records(caplog)] == [
            "/uploads",
            "/uploads/products",
        ]

    async def test_control_characters_in_the_path_cannot_forge_lines(
        self, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO, logger="app.access")
        await client.get("/x%0A2026-01-01 INFO app.access: GET /forged 200")
        [record] = access_records(caplog)
        assert "\n" not in record.getMessage()
        assert "\\x0a" in record.getMessage()
        assert loggable_path("/" + "a" * 500).endswith("…")


async def _streaming_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Sends a first chunk, then waits until the client has it before the second one:
    a middleware that buffers would never let the first through."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"first,", "more_body": True})
    await asyncio.wait_for(scope["state"]["client_has_first"].wait(), timeout=5)
    message = await receive()  # the disconnect passes through untouched
    assert message["type"] == "http.disconnect"
    await send({"type": "http.response.body", "body": b"second", "more_body": False})


class TestStreaming:
    async def test_chunks_pass_one_by_one(self) -> None:
        metrics = Metrics()
        middleware = RequestMiddleware(_streaming_app, metrics)
        client_has_first = asyncio.Event()
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)
            if message.get("body") == b"first,":
                client_has_first.set()

        scope: Scope = {
            "type": "http",
            "method": "GET",
            "path": "/exports/order_full_information.csv",
            "headers": [],
            "state": {"client_has_first": client_has_first},
        }
        await middleware(scope, receive, send)
        assert [m["type"] for m in sent] == [
            "http.response.start",
            "http.response.body",
            "http.response.body",
        ]
        assert (b"x-request-id", sent[0]["headers"][0][1]) == sent[0]["headers"][0]

    async def test_real_export_answers_through_the_middleware(
        self, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO, logger="app.access")
        async with client.stream("GET", "/exports/order_full_information.csv") as response:
            body = await response.aread()
        assert response.status_code == 200
        assert body.startswith(b"order_created_date,order_id,")
        assert GENERATED.fullmatch(response.headers["x-request-id"])
        [record] = access_records(caplog)
        assert record.bytes == len(body)  # type: ignore[attr-defined]


async def test_browsers_of_allowed_origins_may_read_the_id(
    database_url: URL, tmp_path: Path, clean_db: None
) -> None:
    app = create_app(make_settings(database_url, tmp_path, cors_origins=["http://ui.test"]))
    async for c in open_client(app):
        response = await c.get("/healthz", headers={"Origin": "http://ui.test"})
    assert response.headers["access-control-allow-origin"] == "http://ui.test"
    assert "X-Request-ID" in response.headers["access-control-expose-headers"]
    assert GENERATED.fullmatch(response.headers["x-request-id"])
