"""READ_ACCESS=key: every data read needs a read key or the write key, the open routes
stay open, a read key cannot write (403), /metrics follows METRICS_ACCESS (issue 14)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy import URL

from app.main import create_app
from tests.conftest import API_KEY, PRODUCTS, make_settings, open_client
from tests.helpers import assert_error, upload
from tests.reliability.test_security import TOKEN_AUTHORIZED

READ_KEYS = ("reader-one-key", "reader-two-key")
# Open without a key whatever READ_ACCESS says (/metrics by METRICS_ACCESS, public here).
OPEN = {
    "/",
    "/healthz",
    "/readyz",
    "/metrics",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/docs-static/redoc.standalone.js",  # ReDoc's bundle, served by the app (app/kit/redoc.py)
    "/openapi.json",
}
OPEN_EXTRA = (
    "/dashboard/static/dashboard.js",
    "/dashboard/static/echarts.min.js",
    "/dashboard/static/favicon.svg",
)


def keyed_app(database_url: URL, tmp_path: Path, **overrides: Any) -> FastAPI:
    settings = make_settings(
        database_url,
        tmp_path,
        read_access="key",
        read_api_keys=" , ".join(READ_KEYS),
        **overrides,
    )
    return create_app(settings)


@pytest.fixture
def app(database_url: URL, tmp_path: Path) -> FastAPI:
    return keyed_app(database_url, tmp_path)


@pytest.fixture
async def client(app: FastAPI, clean_db: None) -> AsyncIterator[httpx.AsyncClient]:
    async for c in open_client(app):
        yield c


def get_routes(app: FastAPI) -> list[str]:
    """Every GET route of the app, those left out of the OpenAPI document included
    (included routers are walked down to their routes)."""
    return sorted(
        route.path
        for route in iter_route_contexts(app.routes)
        if route.path and "GET" in (getattr(route, "methods", None) or ())
    )


def concrete(path: str) -> str:
    return path.replace("{upload_id}", "1").replace("{kind}", "products")


class TestReadKeys:
    async def test_every_data_read_refuses_a_missing_or_wrong_key(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        reads = [p for p in get_routes(app) if p not in OPEN]
        # The enumeration must see the data routes, those the dashboard's charts read included.
        assert {"/kpis", "/orders", "/uploads/{upload_id}/rejects"} <= set(reads)
        assert {"/insights/top-categories", "/forecasts/total/history"} <= set(reads)
        for path in reads:
            for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": READ_KEYS[0] + "x"}):
                response = await client.get(concrete(path), headers=headers)
                assert_error(response, 401, "unauthorized")
                assert response.headers["WWW-Authenticate"] == "X-API-Key"

    async def test_read_keys_and_the_write_key_read_every_data_route(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        for path in (p for p in get_routes(app) if p not in OPEN):
            for key in (*READ_KEYS, API_KEY):
                response = await client.get(concrete(path), headers={"X-API-Key": key})
                # Past the key: an answer, or the route's own 404/422 for made-up ids.
                assert response.status_code not in (401, 403, 500), (path, response.text)
        kpis = await client.get("/kpis", headers={"X-API-Key": READ_KEYS[1]})
        assert kpis.status_code == 200, kpis.text

    async def test_open_routes_stay_open(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        assert set(get_routes(app)) >= OPEN
        for path in sorted(OPEN - {"/docs/oauth2-redirect"}) + list(OPEN_EXTRA):
            response = await client.get(path)
            assert response.status_code == 200, (path, response.text)

    async def test_a_read_key_cannot_write(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        writes = [
            (method.upper(), path)
            for path, operations in app.openapi()["paths"].items()
            for method, operation in operations.items()
            if method != "get" and (method.upper(), path) not in TOKEN_AUTHORIZED
        ]
        assert writes, "no write routes found: the enumeration is broken"
        for method, path in writes:
            assert "403" in app.openapi()["paths"][path][method.lower()]["responses"]
            for key in READ_KEYS:
                response = await client.request(
                    method,
                    concrete(path),
                    headers={"X-API-Key": key},
                    files={"file": ("p.csv", PRODUCTS.encode(), "text/csv")},
                )
                assert_error(response, 403, "forbidden")
        assert (await client.get("/uploads", headers={"X-API-Key": API_KEY})).json()["items"] == []
        written = await upload(client, "products", PRODUCTS, api_key=API_KEY)
        assert written.status_code == 201, written.text
        history = await client.get("/uploads", headers={"X-API-Key": READ_KEYS[0]})
        assert [u["upload_id"] for u in history.json()["items"]] == [written.json()["upload_id"]]

    async def test_openapi_declares_the_key_on_every_read(self, app: FastAPI) -> None:
        paths = app.openapi()["paths"]
        for path in get_routes(app):
            # (a GET left out of the schema, as the uploads' POST-only paths: not a read)
            if "get" in paths.get(path, {}) and path not in OPEN:
                operation = paths[path]["get"]
                assert operation["security"] == [{"ApiKeyAuth": []}], path
                assert "401" in operation["responses"], path
        assert "security" not in paths["/healthz"]["get"]

    async def test_keys_never_reach_the_logs(
        self, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.DEBUG):
            await client.get("/kpis", headers={"X-API-Key": READ_KEYS[0]})
            await client.get("/kpis", headers={"X-API-Key": "guess-" + READ_KEYS[1]})
            await upload(client, "products", PRODUCTS, api_key=READ_KEYS[1])
        assert caplog.records
        for key in (*READ_KEYS, API_KEY):
            assert key not in caplog.text


class TestPublicReads:
    async def test_public_reads_still_refuse_a_read_key_on_writes(
        self, database_url: URL, tmp_path: Path, clean_db: None
    ) -> None:
        settings = make_settings(database_url, tmp_path, read_api_keys=READ_KEYS[0])
        async for client in open_client(create_app(settings)):
            assert (await client.get("/kpis")).status_code == 200
            response = await upload(client, "products", PRODUCTS, api_key=READ_KEYS[0])
            assert_error(response, 403, "forbidden")

    async def test_openapi_declares_no_key_on_public_reads(
        self, database_url: URL, tmp_path: Path
    ) -> None:
        app = create_app(make_settings(database_url, tmp_path))
        paths = app.openapi()["paths"]
        assert "security" not in paths["/kpis"]["get"]
        for kind in ("products", "orders"):
            assert paths[f"/uploads/{kind}"]["post"]["security"] == [{"ApiKeyAuth": []}]


class TestMetricsAccess:
    async def test_metrics_follow_metrics_access(
        self, database_url: URL, tmp_path: Path, clean_db: None
    ) -> None:
        app = keyed_app(database_url, tmp_path, metrics_access="key")
        async for client in open_client(app):
            assert_error(await client.get("/metrics"), 401, "unauthorized")
            for key in (READ_KEYS[0], API_KEY):
                response = await client.get("/metrics", headers={"X-API-Key": key})
                assert response.status_code == 200
                assert "orderlens_http_requests_total" in response.text
            assert (await client.get("/healthz")).status_code == 200

    async def test_metrics_stay_public_by_default_under_read_keys(
        self, client: httpx.AsyncClient
    ) -> None:
        assert (await client.get("/metrics")).status_code == 200


class TestPublicReadsWarning:
    @pytest.mark.parametrize(
        ("host", "read_access", "warned"),
        [
            ("0.0.0.0", None, True),
            ("192.0.2.10", None, True),
            ("0.0.0.0", "public", False),
            ("0.0.0.0", "key", False),
            ("127.0.0.1", None, False),
            ("::1", None, False),
            ("localhost", None, False),
        ],
    )
    async def test_warns_when_reads_are_public_beyond_loopback(
        self,
        database_url: URL,
        tmp_path: Path,
        caplog: pytest.LogCaptureFixture,
        host: str,
        read_access: str | None,
        warned: bool,
    ) -> None:
        settings = make_settings(database_url, tmp_path, host=host, read_access=read_access)
        with caplog.at_level(logging.WARNING):
            async for _ in open_client(create_app(settings)):
                pass
        lines = [r.getMessage() for r in caplog.records if "reads are public" in r.getMessage()]
        assert len(lines) == (1 if warned else 0), lines
        if warned:
            assert host in lines[0] and "READ_ACCESS=key" in lines[0]
