"""The security review, as tests: the key on every write, no secret in logs or answers,
no internals in errors, CORS closed unless configured."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import URL

from app.main import create_app
from tests.conftest import API_KEY, PRODUCTS, make_settings, open_client
from tests.helpers import assert_error, upload

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
ORDERS = "id,product_id,quantity,created_date\n1,1,2,2024-12-01\n2,999,1,2024-12-01\n"
INTERNALS = re.compile(
    r"Traceback|File \"|asyncpg|sqlalchemy|psycopg|SELECT |INSERT |COPY |"
    r"pg_catalog|/work/|site-packages",
    re.IGNORECASE,
)


# Writes a per-request secret authorizes instead of the write key: a sync reports its
# own reads finished with the token each read answered with (X-Sync-Token), which works
# with a read key and for nobody else's reads (tests/exports/test_sync.py).
TOKEN_AUTHORIZED = {("POST", "/syncs/finished")}


def _write_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every write operation the API declares (its OpenAPI document lists them all) that
    the write key authorizes."""
    return [
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if method.upper() in WRITES and (method.upper(), path) not in TOKEN_AUTHORIZED
    ]


class TestApiKey:
    async def test_every_write_route_refuses_a_missing_or_wrong_key(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        writes = _write_routes(app)
        assert writes, "no write routes found: the enumeration is broken"
        for method, path in writes:
            url = path.replace("{kind}", "products").replace("{upload_id}", "1")
            for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": API_KEY + "x"}):
                response = await client.request(
                    method,
                    url,
                    headers=headers,
                    files={"file": ("p.csv", PRODUCTS.encode(), "text/csv")},
                )
                assert_error(response, 401, "unauthorized")
                assert response.headers["WWW-Authenticate"] == "X-API-Key"
        assert (await client.get("/uploads")).json()["items"] == []

    async def test_a_key_differing_only_in_case_or_whitespace_is_refused(
        self, client: httpx.AsyncClient
    ) -> None:
        for wrong in (API_KEY.upper(), f" {API_KEY}", f"{API_KEY} ", API_KEY[:-1]):
            response = await upload(client, "products", PRODUCTS, api_key=wrong)
            assert_error(response, 401, "unauthorized")


class TestSecrets:
    async def test_keys_and_database_password_never_reach_logs_or_answers(
        self, database_url: URL, tmp_path: Path, clean_db: None, caplog: pytest.LogCaptureFixture
    ) -> None:
        settings = make_settings(database_url.set(password="db-secret-pw"), tmp_path)
        seen: list[str] = []
        with caplog.at_level(logging.DEBUG):
            # The test server trusts local connections, so the password is carried in the
            # settings and the engine's URL but never checked: it must never be echoed.
            async for client in open_client(create_app(settings)):
                for response in (
                    await client.get("/readyz"),
                    await client.get("/kpis"),
                    await upload(client, "products", PRODUCTS),
                    await upload(client, "products", PRODUCTS, api_key="guess-" + API_KEY),
                ):
                    seen.append(response.text + str(response.headers))
        text = caplog.text + "".join(seen)
        for secret in ("db-secret-pw", API_KEY):
            assert secret not in text


class TestErrors:
    async def test_error_answers_carry_no_internals(self, client: httpx.AsyncClient) -> None:
        answers = [
            await client.get("/nowhere"),
            await client.delete("/kpis"),
            await client.get("/orders", params={"limit": "-1"}),
            await client.get("/orders", params={"cursor": "' OR 1=1 --"}),
            await client.get("/kpis", params={"start": "2024-02-30"}),
            await client.get("/uploads/99999999999999999999"),
            await client.get("/uploads/1/rejects"),
            await upload(client, "products", b""),
            await upload(client, "products", b"\xff\xfe\x00bad"),
            await upload(client, "orders", ORDERS),
            await client.post(
                "/uploads/orders",
                content=b"not multipart",
                headers={"X-API-Key": API_KEY, "Content-Type": "multipart/form-data"},
            ),
        ]
        for response in answers:
            assert response.status_code < 500, response.text
            assert not INTERNALS.search(response.text), response.text


class TestCors:
    PREFLIGHT = {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}

    async def test_closed_by_default(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/kpis", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in response.headers
        response = await client.options("/uploads/products", headers=self.PREFLIGHT)
        assert "access-control-allow-origin" not in response.headers

    async def test_open_only_to_configured_origins(
        self, database_url: URL, tmp_path: Path, clean_db: None
    ) -> None:
        settings = make_settings(database_url, tmp_path, cors_origins=["http://dash.example"])
        async for client in open_client(create_app(settings)):
            ok = await client.options(
                "/uploads/products", headers={**self.PREFLIGHT, "Origin": "http://dash.example"}
            )
            assert ok.headers["access-control-allow-origin"] == "http://dash.example"
            assert "X-API-Key".lower() in ok.headers["access-control-allow-headers"].lower()
            evil = await client.options("/uploads/products", headers=self.PREFLIGHT)
            assert "access-control-allow-origin" not in evil.headers
