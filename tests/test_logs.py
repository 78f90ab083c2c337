"""Log records carry the request id and the upload id of the work under way; JSON
lines (LOG_FORMAT=json) parse and carry them as fields."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import URL

from app import logs
from app.main import create_app
from tests.conftest import make_settings, open_client
from tests.helpers import upload

PRODUCTS = "id,name,category,price\n1,Shirt,Shirts,10.00\n"


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What the root logger writes, as LOG_FORMAT=json would write it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.ContextFilter())
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def parsed(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


class TestJson:
    async def test_upload_lines_carry_request_and_upload_ids(
        self, client: httpx.AsyncClient, json_lines: io.StringIO
    ) -> None:
        response = await upload(client, "products", PRODUCTS)
        upload_id = response.json()["upload_id"]
        rid = response.headers["x-request-id"]
        entries = parsed(json_lines)
        assert entries, "nothing logged"
        for entry in entries:
            assert {"time", "level", "logger", "message"} <= set(entry)
            assert entry["request_id"] == rid
        ingest = [e for e in entries if e["logger"] == "app.uploads.service"]
        assert len(ingest) >= 2  # started, then the phases
        assert all(e["upload_id"] == upload_id for e in ingest)
        [access] = [e for e in entries if e["logger"] == "app.access"]
        assert access["upload_id"] == upload_id
        assert access["method"] == "POST"
        assert access["route"] == "/uploads/products"  # one operation per kind
        assert access["path"] == "/uploads/products"
        assert access["status"] == 201
        assert isinstance(access["duration_ms"], float)
        assert access["bytes"] == len(response.content)

    async def test_failed_upload_logs_its_upload_id(
        self, client: httpx.AsyncClient, json_lines: io.StringIO
    ) -> None:
        response = await upload(client, "orders", "id,product_id,quantity,created_date\n")
        assert response.status_code == 422
        upload_id = response.json()["error"]["details"]["upload_id"]
        ingest = [e for e in parsed(json_lines) if e["logger"] == "app.uploads.service"]
        assert ingest and all(e["upload_id"] == upload_id for e in ingest)

    def test_fields_absent_outside_a_request(self, json_lines: io.StringIO) -> None:
        logging.getLogger("app.test").info("hello %s", "world")
        [entry] = parsed(json_lines)
        assert entry["message"] == "hello world"
        assert "request_id" not in entry
        assert "upload_id" not in entry

    def test_exceptions_stay_on_one_line(self, json_lines: io.StringIO) -> None:
        try:
            raise ValueError("bad\nthing")
        except ValueError:
            logging.getLogger("app.test").exception("failed")
        [entry] = parsed(json_lines)
        assert "ValueError" in entry["exception"]


class TestContext:
    def test_bound_fields_nest_and_unwind(self) -> None:
        with logs.bound(request_id="r1"):
            with logs.bound(upload_id=7):
                assert logs.current("request_id") == "r1"
                assert logs.current("upload_id") == 7
            assert logs.current("upload_id") is None
        assert logs.current("request_id") is None

    def test_bind_adds_to_the_block_under_way(self) -> None:
        with logs.bound(request_id="r1"):
            logs.bind(upload_id=8)
            assert logs.current("upload_id") == 8
        assert logs.current("upload_id") is None

    def test_text_lines_end_with_the_ids(self) -> None:
        record = logging.LogRecord("app.x", logging.INFO, __file__, 1, "loaded", None, None)
        with logs.bound(request_id="r1", upload_id=7):
            logs.ContextFilter().filter(record)
        line = logs.TextFormatter().format(record)
        assert line.endswith("INFO app.x: loaded [request_id=r1 upload_id=7]")

    def test_configured_handler_filters_in_the_context(self) -> None:
        handlers = [h for h in logging.getLogger().handlers if getattr(h, "_orderlens", False)]
        assert handlers
        assert any(isinstance(f, logs.ContextFilter) for h in handlers for f in h.filters)


class TestApiKeyLine:
    async def test_generated_is_said_only_when_a_key_is_generated(
        self, database_url: URL, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        settings = make_settings(database_url, tmp_path, api_key=None)
        caplog.set_level(logging.INFO, logger="app.main")
        async for _ in open_client(create_app(settings)):
            pass
        first = [r.getMessage() for r in caplog.records if "API key" in r.getMessage()]
        assert first == [f"API key generated; it is kept in {tmp_path / 'api-key'}"]
        caplog.clear()
        async for _ in open_client(create_app(settings)):
            pass
        assert [r for r in caplog.records if "API key" in r.getMessage()] == []
        assert (tmp_path / "api-key").exists()
