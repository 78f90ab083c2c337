"""Issue 27, item 4 in part: `?columns=` maps a file's own header names to the columns,
so an export is loaded without renaming its header by hand."""

from __future__ import annotations

import datetime
import logging

import httpx
import pytest

from tests.conftest import PRODUCTS, Db
from tests.helpers import assert_error, upload

EXPORT = (
    "LineNo,Item,Qty,InvoiceDate\n"
    "1,1,2,2024-11-06T10:00:00-03:00\n"
    "2,2,1,2024-11-06 11:00\n"
    "3,999,1,2024-11-07\n"
)
MAPPING = "id=LineNo,product_id=Item,quantity=Qty,created_date=InvoiceDate"


async def test_an_export_loads_by_its_own_header_names(
    client: httpx.AsyncClient, db: Db, caplog: pytest.LogCaptureFixture
) -> None:
    await upload(client, "products", PRODUCTS)
    with caplog.at_level(logging.INFO, "app.uploads.service"):
        response = await upload(client, "orders", EXPORT, params={"columns": MAPPING})
    assert response.status_code == 201, response.text
    said = [r.getMessage() for r in caplog.records if "rows by the" in r.getMessage()]
    assert "by the fast path" in said[-1]  # the header is still exactly the columns
    report = response.json()
    assert report["columns"] == ["LineNo", "Item", "Qty", "InvoiceDate"]  # as received
    assert (report["rows_inserted"], report["rejects_by_code"]) == (2, {"unknown_product": 1})
    assert await db.rows("SELECT order_id, product_id, quantity, created_date FROM orders") == [
        (1, 1, 2, datetime.date(2024, 11, 6)),
        (2, 2, 1, datetime.date(2024, 11, 6)),
    ]
    [reject] = (await client.get(report["rejects_url"])).json()["items"]
    assert (reject["Item"], reject["InvoiceDate"]) == ("999", "2024-11-07")  # the file's names


async def test_names_match_as_headers_do_and_a_column_of_the_own_name_is_extra(
    client: httpx.AsyncClient, db: Db
) -> None:
    await upload(client, "products", PRODUCTS)
    content = "LINENO;product_id;quantity; Order Date ;id\r\n7;1;1;2024-12-01;99\r\n"
    params = {"columns": "created_date=order date,id=LineNo"}
    report = (await upload(client, "orders", content, params=params)).json()
    assert report["dialect"]["delimiter"] == ";"  # sniffed by the file's names
    assert report["rows_inserted"] == 1
    assert report["warnings"] == ["Extra columns ignored: 'id'."]
    assert await db.rows("SELECT order_id FROM orders") == [(7,)]


async def test_a_mapped_name_the_file_lacks_is_missing_by_that_name(
    client: httpx.AsyncClient, db: Db
) -> None:
    await upload(client, "products", PRODUCTS)
    params = {"columns": "id=Line"}
    response = await upload(client, "orders", EXPORT, params=params)
    error = assert_error(response, 422, "missing_columns")
    assert "id (from 'line')" in error["message"]
    wrong_kind = await upload(client, "products", PRODUCTS, params={"columns": "quantity=Qty"})
    error = assert_error(wrong_kind, 422, "missing_columns")
    assert error["details"]["unknown"] == ["quantity"]


@pytest.mark.parametrize(
    "value", ["id", "id=", "=LineNo", "id=a,ID=b", "id=a,product_id=A", "id=a,,quantity=b"]
)
async def test_a_mapping_that_does_not_parse_is_refused(
    client: httpx.AsyncClient, db: Db, value: str
) -> None:
    response = await upload(client, "orders", EXPORT, params={"columns": value})
    assert_error(response, 422, "validation_error")
    assert await db.count("uploads") == 0  # refused before anything was recorded
