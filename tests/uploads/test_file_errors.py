"""File-level problems reject the whole upload with the SPEC code and load nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import API_KEY, PRODUCTS, Db, make_settings, open_client
from tests.helpers import assert_error, multipart_body, post_multipart, upload

ORDERS_HEADER = "id,product_id,quantity,created_date\n"


async def assert_nothing_loaded(db: Db) -> None:
    for table in ("orders", "rejects", "daily_sales", "product_daily_sales", "product_sales"):
        assert await db.count(table) == 0, table


LONG_UTF8 = ("id,product_id,quantity,created_date\n" + "1,1,1,2024-01-01\n" * 4000).encode()


class TestFileLevelErrors:
    @pytest.mark.parametrize(
        ("content", "code"),
        [
            (b"", "empty_file"),
            (b"   \n\n  \r\n", "empty_file"),
            (ORDERS_HEADER.encode(), "empty_file"),
            (ORDERS_HEADER.encode() + b"\n\n\n", "empty_file"),
            (b"\xef\xbb\xbf" + ORDERS_HEADER.encode(), "empty_file"),
            (b"id,product_id,quantity\n1,1,1\n", "missing_columns"),
            (b"order,product,qty,date\n1,1,1,2024-01-01\n", "missing_columns"),
            (b"id,product_id,quantity,created_date,ID\n1,1,1,2024-01-01,2\n", "duplicate_columns"),
            # UTF-8 for the first 16 KB (the encoding's sample), then a byte that is not.
            (LONG_UTF8 + b"2,1,1,2024-\xe9-01\n", "undecodable"),
            (LONG_UTF8 + b'2,1,1,"2024-01-01"\n3,1,1,\xff\n', "undecodable"),
            (b"id,product_id,quantity,created_date\n1,1,1,2024-01-01\x00\n", "undecodable"),
            (b"id,product_id,quantity,created_date\n1,1,1,2024-01-01\x01\n", "undecodable"),
            (b"id,prod\xe9,quantity,created_date\n1,1,1,2024-01-01\n", "missing_columns"),
        ],
        ids=[
            "empty",
            "whitespace-only",
            "header-only",
            "header-and-blank-lines",
            "bom-header-only",
            "missing-column",
            "wrong-names",
            "duplicate-column-case-insensitive",
            "latin1-byte-fast-path",
            "bad-byte-careful-path",
            "nul-byte",
            "control-character",
            "cp1252-header-is-read-as-such",
        ],
    )
    async def test_rejects_the_file_and_loads_nothing(
        self, client: httpx.AsyncClient, db: Db, content: bytes, code: str
    ) -> None:
        await upload(client, "products", PRODUCTS)
        response = await upload(client, "orders", content)
        error = assert_error(response, 422, code)
        upload_id = error["details"]["upload_id"]
        await assert_nothing_loaded(db)
        report = (await client.get(f"/uploads/{upload_id}")).json()
        assert report["status"] == "failed"
        assert report["error"]["code"] == code
        assert report["rows_inserted"] == 0

    async def test_missing_columns_are_named(self, client: httpx.AsyncClient) -> None:
        error = assert_error(
            await upload(client, "products", "ID , Name\n1,x\n"), 422, "missing_columns"
        )
        assert error["details"]["missing"] == ["category", "price"]

    async def test_duplicate_columns_are_named(self, client: httpx.AsyncClient) -> None:
        error = assert_error(
            await upload(client, "products", "id,name,category,price, Name \n1,a,b,1,c\n"),
            422,
            "duplicate_columns",
        )
        assert error["details"]["duplicates"] == ["name"]

    async def test_no_file_part(self, client: httpx.AsyncClient, db: Db) -> None:
        response = await client.post(
            "/uploads/products",
            files={"other": ("x.csv", PRODUCTS.encode(), "text/csv")},
            headers={"X-API-Key": API_KEY},
        )
        assert_error(response, 422, "missing_file")
        assert await db.count("uploads") == 0

    async def test_not_multipart(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/uploads/products",
            content=PRODUCTS.encode(),
            headers={"X-API-Key": API_KEY, "Content-Type": "text/csv"},
        )
        assert_error(response, 422, "missing_file")


class TestSizeLimit:
    @pytest.fixture
    async def small(
        self, database_url: object, tmp_path: object, clean_db: None
    ) -> AsyncIterator[httpx.AsyncClient]:
        from app.main import create_app

        settings = make_settings(database_url, tmp_path, max_upload_bytes=1000)  # type: ignore[arg-type]
        app: FastAPI = create_app(settings)
        async for c in open_client(app):
            yield c

    async def test_over_the_limit_is_413(self, small: httpx.AsyncClient, db: Db) -> None:
        big = "id,name,category,price\n" + "".join(f"{i},n{i},c,1\n" for i in range(1, 200))
        assert len(big) > 1000
        assert_error(await upload(small, "products", big), 413, "too_large")
        assert await db.count("products") == 0

    async def test_limit_holds_without_content_length(
        self, small: httpx.AsyncClient, db: Db
    ) -> None:
        rows = "".join(f"{i},n{i},c,1\n" for i in range(1, 400))
        body = multipart_body("b0undary", ["id,name,category,price\n", rows])
        response = await post_multipart(small, "products", body, "b0undary")
        assert_error(response, 413, "too_large")
        assert await db.count("products") == 0

    async def test_under_the_limit_loads(self, small: httpx.AsyncClient) -> None:
        response = await upload(small, "products", PRODUCTS)
        assert response.status_code == 201
        assert response.json()["rows_inserted"] == 3


class TestAuth:
    async def test_upload_needs_the_key(self, client: httpx.AsyncClient, db: Db) -> None:
        assert_error(await upload(client, "products", PRODUCTS, api_key=None), 401, "unauthorized")
        assert_error(
            await upload(client, "products", PRODUCTS, api_key="nope"), 401, "unauthorized"
        )
        assert await db.count("uploads") == 0

    async def test_unknown_kind_is_422(self, client: httpx.AsyncClient) -> None:
        assert_error(await upload(client, "customers", PRODUCTS), 422, "validation_error")

    async def test_bad_on_conflict_is_422(self, client: httpx.AsyncClient) -> None:
        assert_error(
            await upload(client, "products", PRODUCTS, on_conflict="merge"), 422, "validation_error"
        )
