"""Every error, whatever raised it, answers `{"error": {"code", "message", "details"}}`."""

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from app.errors import AppError
from app.security import ApiKeyDep
from tests.conftest import API_KEY, open_client
from tests.helpers import assert_error

probe = APIRouter(prefix="/_probe")


@probe.get("/items/{item_id}")
async def item(item_id: int, limit: int = 10) -> dict[str, int]:
    return {"item_id": item_id, "limit": limit}


@probe.get("/domain")
async def domain() -> None:
    raise AppError("Nope.", code="teapot", status_code=418, details={"why": "test"})


@probe.get("/boom")
async def boom() -> None:
    raise RuntimeError("secret internals: SELECT * FROM orders")


@probe.post("/write", dependencies=[ApiKeyDep])
async def write() -> dict[str, bool]:
    return {"ok": True}


@pytest.fixture
async def probed(app: FastAPI, clean_db: None) -> AsyncIterator[httpx.AsyncClient]:
    app.include_router(probe)
    async for c in open_client(app):
        yield c


class TestErrorShape:
    async def test_unknown_route_is_404(self, probed: httpx.AsyncClient) -> None:
        assert_error(await probed.get("/no/such/thing"), 404, "not_found")

    async def test_wrong_method_is_405(self, probed: httpx.AsyncClient) -> None:
        assert_error(await probed.delete("/healthz"), 405, "method_not_allowed")

    async def test_request_validation_is_422(self, probed: httpx.AsyncClient) -> None:
        error = assert_error(
            await probed.get("/_probe/items/abc", params={"limit": "x"}), 422, "validation_error"
        )
        locations = {tuple(d["loc"]) for d in error["details"]}
        assert locations == {("path", "item_id"), ("query", "limit")}
        assert all("input" not in d for d in error["details"])

    async def test_domain_error_keeps_its_code_and_status(self, probed: httpx.AsyncClient) -> None:
        error = assert_error(await probed.get("/_probe/domain"), 418, "teapot")
        assert error == {"code": "teapot", "message": "Nope.", "details": {"why": "test"}}

    async def test_unexpected_error_is_500_without_internals(
        self, probed: httpx.AsyncClient
    ) -> None:
        response = await probed.get("/_probe/boom")
        assert_error(response, 500, "internal_error")
        assert "SELECT" not in response.text
        assert "Traceback" not in response.text


class TestApiKey:
    async def test_missing_key_is_401(self, probed: httpx.AsyncClient) -> None:
        response = await probed.post("/_probe/write")
        assert_error(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "X-API-Key"

    async def test_wrong_key_is_401(self, probed: httpx.AsyncClient) -> None:
        response = await probed.post("/_probe/write", headers={"X-API-Key": API_KEY + "x"})
        assert_error(response, 401, "unauthorized")

    async def test_right_key_passes(self, probed: httpx.AsyncClient) -> None:
        response = await probed.post("/_probe/write", headers={"X-API-Key": API_KEY})
        assert response.status_code == 200
        assert response.json() == {"ok": True}


class TestOpenApi:
    async def test_docs_and_schema_declare_the_api_key(self, client: httpx.AsyncClient) -> None:
        docs = await client.get("/docs")
        assert docs.status_code == 200
        assert "swagger-ui" in docs.text
        # Served by the app itself, so it works with no internet.
        assert "http" not in docs.text.replace("http-equiv", "")
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
            assert (await client.get(f"/static-offline-docs/{asset}")).status_code == 200
        schema = (await client.get("/openapi.json")).json()
        assert schema["components"]["securitySchemes"]["ApiKeyAuth"] == {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": schema["components"]["securitySchemes"]["ApiKeyAuth"]["description"],
        }
        assert "ErrorResponse" in schema["components"]["schemas"]

    async def test_redoc_loads_nothing_from_elsewhere(self, client: httpx.AsyncClient) -> None:
        page = await client.get("/redoc")
        assert page.status_code == 200
        assert "<redoc" in page.text
        assert "http" not in page.text.replace("http-equiv", "")
        srcs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert srcs and all(src.startswith("/") for src in srcs), srcs
        for src in srcs:
            assert (await client.get(src)).status_code == 200, src
        bundle = await client.get("/docs-static/redoc.standalone.js")
        assert bundle.headers["content-type"].startswith("text/javascript")
        assert b"cdn.redoc.ly" not in bundle.content
        assert len(bundle.content) > 500_000  # the whole of ReDoc, not a stub
