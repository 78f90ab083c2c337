"""Every input rule of SPEC section 2: good values load, each bad one is quarantined with
its code, the line it is on, and its fields as received."""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

import httpx
import pytest

from app.uploads import staging
from tests.conftest import PRODUCTS, Db
from tests.helpers import upload

ORDERS_HEADER = "id,product_id,quantity,created_date"


async def rejects(client: httpx.AsyncClient, report: dict[str, Any]) -> list[dict[str, Any]]:
    body = (await client.get(report["rejects_url"])).json()
    return body["items"]  # type: ignore[no-any-return]


async def load_orders(
    client: httpx.AsyncClient, *rows: str, header: str = ORDERS_HEADER
) -> dict[str, Any]:
    await upload(client, "products", PRODUCTS)
    response = await upload(client, "orders", "\n".join([header, *rows]) + "\n")
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


class TestOrderRules:
    @pytest.mark.parametrize(
        ("row", "code"),
        [
            (",1,1,2024-12-01", "missing_value"),
            ("1,,1,2024-12-01", "missing_value"),
            ("1,1,  ,2024-12-01", "missing_value"),
            ("1,1,1,", "missing_value"),
            ("1,1,1,''", "missing_value"),
            ("abc,1,1,2024-12-01", "invalid_integer"),
            ("1.0,1,1,2024-12-01", "invalid_integer"),
            ("1,1,1.5,2024-12-01", "invalid_integer"),
            ("1,0x1,1,2024-12-01", "invalid_integer"),
            ("1,1,1_000,2024-12-01", "invalid_integer"),
            ("1,1,1e3,2024-12-01", "invalid_integer"),
            ("1,1, 1 2 ,2024-12-01", "invalid_integer"),
            ("0,1,1,2024-12-01", "out_of_range"),
            ("-5,1,1,2024-12-01", "out_of_range"),
            ("9223372036854775808,1,1,2024-12-01", "out_of_range"),
            ("99999999999999999999999999999999999999,1,1,2024-12-01", "out_of_range"),
            ("1,2147483648,1,2024-12-01", "out_of_range"),
            ("1,0,1,2024-12-01", "out_of_range"),
            ("1,1,0,2024-12-01", "out_of_range"),
            ("1,1,-1,2024-12-01", "out_of_range"),
            ("1,1,2147483648,2024-12-01", "out_of_range"),
            ("1,1,1,2024-02-30", "invalid_date"),
            ("1,1,1,2023-02-29", "invalid_date"),
            ("1,1,1,2024-13-01", "invalid_date"),
            ("1,1,1,2024/12/01", "invalid_date"),
            ("1,1,1,01-12-2024", "invalid_date"),
            ("1,1,1,2024-12-1", "invalid_date"),
            ("1,1,1,20240-12-01", "invalid_date"),
            ("1,1,1,0000-01-01", "invalid_date"),
            ("1,1,1,'2024-12-01", "invalid_date"),
            ("1,1,1,\"'2024-12-01'x\"", "invalid_date"),
            ("1,1,1,2024-12-01T24:00", "invalid_date"),  # a date-time, but no such hour
            ("1,1,1,2024-12-01T00:00 UTC", "invalid_date"),
            ("1,1,1,today", "invalid_date"),
            ("1,99,1,2024-12-01", "unknown_product"),
            ("1,1,1", "wrong_field_count"),
            ("1,1,1,2024-12-01,extra", "wrong_field_count"),
        ],
    )
    async def test_bad_row_is_quarantined(
        self, client: httpx.AsyncClient, db: Db, row: str, code: str
    ) -> None:
        report = await load_orders(client, "100,1,2,2024-12-01", row)
        assert report["status"] == "succeeded"
        assert (report["rows_total"], report["rows_inserted"], report["rows_rejected"]) == (2, 1, 1)
        assert report["rejects_by_code"] == {code: 1}
        [reject] = await rejects(client, report)
        assert reject["_error_code"] == code
        assert reject["_row_number"] == 3
        assert reject["_error_message"]
        assert await db.rows("SELECT order_id FROM orders") == [(100,)]

    @pytest.mark.parametrize(
        "created_date",
        [
            "2024-12-01",
            "'2024-12-01'",
            " '2024-12-01' ",
            "' 2024-12-01 '",
            "2024-12-01  ",
            "2024-02-29",
        ],
    )
    async def test_dates_in_the_accepted_forms(
        self, client: httpx.AsyncClient, db: Db, created_date: str
    ) -> None:
        report = await load_orders(client, f"1,1,1,{created_date}")
        assert report["rows_inserted"] == 1, await rejects(client, report)
        expected = created_date.strip().strip("'").strip()
        assert await db.rows("SELECT created_date::text FROM orders") == [(expected,)]

    async def test_integers_are_trimmed_and_signed(self, client: httpx.AsyncClient, db: Db) -> None:
        report = await load_orders(
            client, " 7 , 2 ,+3,2024-12-01", "9223372036854775807,1,2147483647,2024-12-01"
        )
        assert report["rows_inserted"] == 2, await rejects(client, report)
        assert await db.rows("SELECT order_id, product_id, quantity FROM orders ORDER BY 1") == [
            (7, 2, 3),
            (9223372036854775807, 1, 2147483647),
        ]

    async def test_reference_format_loads(self, client: httpx.AsyncClient, db: Db) -> None:
        report = await load_orders(client, "1,1,1,'2024-12-01'", "2,3,4,'2024-12-02'")
        assert report["rows_inserted"] == 2

    async def test_messages_say_what_is_wrong(self, client: httpx.AsyncClient) -> None:
        report = await load_orders(
            client, "1,1,x,2024-12-01", "2,77,1,2024-12-01", "3,1,1,2024-02-30"
        )
        messages = {r["_error_code"]: r["_error_message"] for r in await rejects(client, report)}
        assert messages == {
            "invalid_integer": "quantity 'x' is not a whole number",
            "unknown_product": "product_id 77 is not a stored product",
            "invalid_date": "created_date '2024-02-30' is not a calendar date YYYY-MM-DD",
        }

    async def test_first_problem_in_column_order_wins(self, client: httpx.AsyncClient) -> None:
        report = await load_orders(client, "x,1,,nope")
        assert report["rejects_by_code"] == {"invalid_integer": 1}


class TestProductRules:
    @pytest.mark.parametrize(
        ("row", "code"),
        [
            (",n,c,1", "missing_value"),
            ("9,   ,c,1", "missing_value"),
            ("9,n,,1", "missing_value"),
            ("9,n,c,", "missing_value"),
            ("x,n,c,1", "invalid_integer"),
            ("0,n,c,1", "out_of_range"),
            ("2147483648,n,c,1", "out_of_range"),
            (f"9,{'n' * 201},c,1", "too_long"),
            (f"9,n,{'c' * 101},1", "too_long"),
            ("9,n,c,abc", "invalid_decimal"),
            ('9,n,c,"12,50"', "invalid_decimal"),
            ("9,n,c,1e3", "invalid_decimal"),
            ("9,n,c,12.345", "invalid_decimal"),
            ("9,n,c,1.2.3", "invalid_decimal"),
            ("9,n,c,$5", "invalid_decimal"),
            ("9,n,c,-0.01", "out_of_range"),
            ("9,n,c,10000000000", "out_of_range"),
            ("9,n,c,99999999999999999999999", "out_of_range"),
            ("9,n,c", "wrong_field_count"),
        ],
    )
    async def test_bad_row_is_quarantined(
        self, client: httpx.AsyncClient, db: Db, row: str, code: str
    ) -> None:
        response = await upload(client, "products", f"id,name,category,price\n1,a,b,1\n{row}\n")
        report = response.json()
        assert report["rejects_by_code"] == {code: 1}, await rejects(client, report)
        assert await db.rows("SELECT product_id FROM products") == [(1,)]

    async def test_good_values(self, client: httpx.AsyncClient, db: Db) -> None:
        rows = [
            f"1,{'n' * 200},{'c' * 100},0",
            "2,  Spaced Name  , Hats ,12.5",
            "3,Ünïcödé 👕,Shirts,.5",
            "4,x,y,9999999999.99",
            "5,x,y,+7.10",
            '6,"Comma, Inc",y,00012.00',
        ]
        response = await upload(client, "products", "id,name,category,price\n" + "\n".join(rows))
        assert response.json()["rows_inserted"] == 6, response.json()
        assert await db.rows(
            "SELECT product_id, name, category, price FROM products ORDER BY 1"
        ) == [
            (1, "n" * 200, "c" * 100, Decimal("0.00")),
            (2, "Spaced Name", "Hats", Decimal("12.50")),
            (3, "Ünïcödé 👕", "Shirts", Decimal("0.50")),
            (4, "x", "y", Decimal("9999999999.99")),
            (5, "x", "y", Decimal("7.10")),
            (6, "Comma, Inc", "y", Decimal("12.00")),
        ]


class TestHeaderAndLayout:
    async def test_header_trimmed_case_insensitive_any_order(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        report = await load_orders(
            client, "'2024-12-01', 3 ,1,10", header=" Created_Date ,QUANTITY, Product_ID ,Id"
        )
        assert report["rows_inserted"] == 1
        assert await db.rows("SELECT order_id, product_id, quantity FROM orders") == [(10, 1, 3)]

    async def test_extra_columns_warn_and_keep_originals_in_rejects(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        report = await load_orders(
            client,
            "1,note a,1,2,2024-12-01,z",
            "2,note b,1,x,2024-12-01,z",
            header="id,comment,product_id,quantity,created_date,",
        )
        assert report["rows_inserted"] == 1
        assert report["warnings"][0] == "Extra columns ignored: 'comment', ''."
        assert report["warnings"][1].startswith("50% of the rows were rejected")
        [reject] = await rejects(client, report)
        assert reject["comment"] == "note b"
        assert reject["_column_6"] == "z"
        assert reject["_error_code"] == "invalid_integer"

    async def test_bom_crlf_and_no_final_newline(self, client: httpx.AsyncClient, db: Db) -> None:
        await upload(client, "products", PRODUCTS)
        content = b"\xef\xbb\xbfid,product_id,quantity,created_date\r\n1,1,1,'2024-12-01'\r\n2,2,2,'2024-12-02'"
        report = (await upload(client, "orders", content)).json()
        assert report["rows_inserted"] == 2
        assert report["columns"] == ["id", "product_id", "quantity", "created_date"]

    @pytest.mark.parametrize("fast", [True, False], ids=["as-it-comes", "fast-path-refused"])
    async def test_line_numbers_count_the_header_blank_lines_and_quoted_newlines(
        self, client: httpx.AsyncClient, fast: bool
    ) -> None:
        content = (
            "id,name,category,price\n"
            "1,a,b,1\n"  # line 2
            "\n"  # line 3: blank, not a row
            '2,"two\nlines",b,x\n'  # lines 4-5
            "3,c,d,-1\n"  # line 6
        )
        with contextlib.nullcontext() if fast else staging.careful_path_only():
            report = (await upload(client, "products", content)).json()
        assert report["rows_total"] == 3
        lines = {r["_row_number"]: r["_error_code"] for r in await rejects(client, report)}
        assert lines == {4: "invalid_decimal", 6: "out_of_range"}

    async def test_a_header_over_two_lines_moves_the_line_numbers(
        self, client: httpx.AsyncClient
    ) -> None:
        # CSV numbers lines as a text editor does (a workbook numbers sheet rows instead:
        # tests/uploads/test_dialects.py): here the header takes lines 1 and 2.
        report = await load_orders(
            client,
            '1,1,1,2024-12-01,"a\r\nb"',  # lines 3-4
            "2,1,0,2024-12-01,x",  # line 5
            header='id,product_id,quantity,created_date,"Note\n(internal)"',
        )
        assert [(r["_row_number"], r["_error_code"]) for r in await rejects(client, report)] == [
            (5, "out_of_range")
        ]

    async def test_mixed_line_endings(self, client: httpx.AsyncClient, db: Db) -> None:
        await upload(client, "products", PRODUCTS)
        content = b"id,product_id,quantity,created_date\r\n1,1,1,2024-12-01\n2,1,1,2024-12-01\r3,1,1,2024-12-01\r\n"
        report = (await upload(client, "orders", content)).json()
        assert report["rows_inserted"] == 3, report

    async def test_wrong_field_count_keeps_every_field(self, client: httpx.AsyncClient) -> None:
        report = await load_orders(client, "1,1,1,2024-12-01,x,y", "2,1")
        items = await rejects(client, report)
        assert [(r["_row_number"], r["_error_code"]) for r in items] == [
            (2, "wrong_field_count"),
            (3, "wrong_field_count"),
        ]
        assert items[0]["_extra_fields"] == ["x", "y"]
        assert items[0]["_error_message"] == "expected 4 fields, found 6"
        assert items[1]["quantity"] is None
