"""Issue 14: files in other delimiters, encodings and decimal separators, workbooks and
Parquet, read by the same rules into the same tables, with the dialect in the report."""

from __future__ import annotations

import codecs
import contextlib
import datetime
import decimal
import io
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import URL

from app.main import create_app
from app.uploads import staging, tabular
from app.uploads.tabular import parquet as tabular_parquet
from tests.conftest import PRODUCTS, Db, make_settings, open_client
from tests.helpers import assert_error, upload
from tests.uploads.files import ods, parquet, xlsx, xlsx_sheet_elsewhere

D = decimal.Decimal


async def _rejects(client: httpx.AsyncClient, report: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await client.get(report["rejects_url"])).json()["items"]
    return items


async def _products(db: Db) -> list[tuple[Any, ...]]:
    return await db.rows("SELECT product_id, name, category, price FROM products ORDER BY 1")


async def _orders(db: Db) -> list[tuple[Any, ...]]:
    return await db.rows(
        "SELECT order_id, product_id, quantity, created_date FROM orders ORDER BY 1"
    )


class TestCsvDialects:
    async def test_semicolon_decimal_comma_windows_1252(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        content = (
            "id;name;category;price\r\n1;Camisa Açaí;Roupas;179,34\r\n2;Calça;Roupas;20.5\r\n"
            "3;Boné;Chapéus;1.234,50\r\n"
        ).encode("cp1252")
        response = await upload(client, "products", content)
        assert response.status_code == 201, response.text
        report = response.json()
        assert report["dialect"] == {
            "format": "csv",
            "encoding": "cp1252",
            "delimiter": ";",
            "decimal": ",",
            "date_format": None,
            "timestamps": None,  # products have no dates
            "timezone": None,
        }
        assert report["rejects_by_code"] == {"invalid_decimal": 1}  # no thousands separators
        assert await _products(db) == [
            (1, "Camisa Açaí", "Roupas", D("179.34")),
            (2, "Calça", "Roupas", D("20.50")),
        ]
        [reject] = await _rejects(client, report)
        assert reject["price"] == "1.234,50"  # as received
        assert reject["_row_number"] == 4

    async def test_plain_comma_utf8_reports_its_dialect(self, client: httpx.AsyncClient) -> None:
        report = (await upload(client, "products", PRODUCTS)).json()
        assert report["dialect"] == {
            "format": "csv",
            "encoding": "utf-8",
            "delimiter": ",",
            "decimal": ".",
            "date_format": None,
            "timestamps": None,  # products have no dates
            "timezone": None,
        }

    @pytest.mark.parametrize("bom", [codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE])
    async def test_utf16_with_bom_tab_separated(
        self, client: httpx.AsyncClient, db: Db, bom: bytes
    ) -> None:
        text = "id\tname\tcategory\tprice\r\n1\tÇa va\tPão\t1,5\r\n"
        codec = "utf-16-le" if bom == codecs.BOM_UTF16_LE else "utf-16-be"
        response = await upload(client, "products", bom + text.encode(codec))
        assert response.status_code == 201, response.text
        assert response.json()["dialect"]["encoding"] == "utf-16"
        assert response.json()["dialect"]["delimiter"] == "\t"
        assert await _products(db) == [(1, "Ça va", "Pão", D("1.50"))]

    async def test_query_fixes_delimiter_encoding_and_decimal(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        # Latin-1 without a byte that tells it from Windows-1252: asked, it is reported.
        content = "id|name|category|price\n1|Pão|Padaria|2,5\n2|Café|Bar|3.25\n".encode("latin-1")
        params = {"delimiter": "|", "encoding": "latin-1", "decimal": "."}
        response = await upload(client, "products", content, params=params)
        report = response.json()
        assert report["dialect"]["encoding"] == "iso8859-1"
        assert report["dialect"]["decimal"] == "."
        assert report["rejects_by_code"] == {"invalid_decimal": 1}  # `.` only, as asked
        assert await _products(db) == [(2, "Café", "Bar", D("3.25"))]

    async def test_tab_by_name_and_explicit_decimal_comma_in_a_comma_file(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        content = b'id,name,category,price\n1,a,b,"2,5"\n'
        report = (await upload(client, "products", content, params={"decimal": ","})).json()
        assert report["dialect"]["decimal"] == ","
        assert await _products(db) == [(1, "a", "b", D("2.50"))]
        tabbed = b"id\tname\tcategory\tprice\n2\tc\td\t1\n"
        report = (await upload(client, "products", tabbed, params={"delimiter": "tab"})).json()
        assert report["dialect"]["delimiter"] == "\t", report

    async def test_choices_by_name(self, client: httpx.AsyncClient, db: Db) -> None:
        """Swagger lists the delimiters and decimal separators by name; each name is its
        character (which is taken too)."""
        schema = (await client.get("/openapi.json")).json()
        listed = {
            p["name"]: p["schema"]["anyOf"][0]["enum"]
            for p in schema["paths"]["/uploads/products"]["post"]["parameters"]
            if p["name"] in ("delimiter", "decimal")
        }
        assert listed == {
            "delimiter": ["comma", "semicolon", "tab", "pipe"],
            "decimal": ["point", "comma"],
        }
        for delimiter, char in (("semicolon", ";"), ("pipe", "|"), ("comma", ",")):
            line = char.join(["3", "e", "f", "1,5" if char != "," else '"1,5"'])
            content = char.join(["id", "name", "category", "price"]).encode() + b"\n"
            params = {"delimiter": delimiter, "decimal": "comma"}
            response = await upload(client, "products", content + line.encode(), params=params)
            report = response.json()
            assert report["dialect"]["delimiter"] == char, report
            assert report["dialect"]["decimal"] == ","
        assert await _products(db) == [(3, "e", "f", D("1.50"))]
        point = {"decimal": "point"}
        report = (
            await upload(client, "products", b"id,name,category,price\n4,g,h,2.5\n", params=point)
        ).json()
        assert report["dialect"]["decimal"] == "."

    async def test_an_ambiguous_file_follows_its_header_line(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        # The rows hold commas and semicolons; the header says `;`.
        content = b"id;name;category;price\n1;a,b;c,d;1,5\n"
        report = (await upload(client, "products", content)).json()
        assert report["dialect"]["delimiter"] == ";"
        assert await _products(db) == [(1, "a,b", "c,d", D("1.50"))]

    async def test_date_format_with_a_local_time(self, client: httpx.AsyncClient, db: Db) -> None:
        """An export's US date-times (`12/1/2010 8:26`): the time checked and dropped."""
        await upload(client, "products", PRODUCTS)
        content = (
            "id,product_id,quantity,created_date\n1,1,1,12/1/2010 8:26\n"
            "2,1,1,12/31/2010 23:59:59\n3,1,1,1/2/2011\n4,1,1,2011-01-03T10:00:00Z\n"
            "5,1,1,12/1/2010 24:00\n6,1,1,2/30/2011 10:00\n7,1,1,12/1/2010 8:6\n"
        )
        params = {"date_format": "%m/%d/%Y %H:%M"}
        report = (await upload(client, "orders", content, params=params)).json()
        assert report["dialect"]["date_format"] == "%m/%d/%Y %H:%M"
        assert report["rejects_by_code"] == {"invalid_date": 3}
        assert [r[3] for r in await _orders(db)] == [
            datetime.date(2010, 12, 1),
            datetime.date(2010, 12, 31),
            datetime.date(2011, 1, 2),
            datetime.date(2011, 1, 3),  # ISO date-times still read
        ]
        spaced = await upload(client, "orders", content, params={"date_format": "%d %m %Y %H:%M"})
        assert_error(spaced, 422, "validation_error")

    async def test_date_format_is_never_guessed_but_can_be_given(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        await upload(client, "products", PRODUCTS)
        content = b"id;product_id;quantity;created_date\n1;1;2;01/12/2024\n2;1;1;2024-12-02\n3;1;1;31/02/2024\n4;1;1;'5/1/2024'\n"
        guessed = (await upload(client, "orders", content)).json()
        assert guessed["rejects_by_code"] == {"invalid_date": 3}
        response = await upload(client, "orders", content, params={"date_format": "%d/%m/%Y"})
        report = response.json()
        assert report["dialect"]["date_format"] == "%d/%m/%Y"
        assert report["rejects_by_code"] == {"invalid_date": 1}
        assert (report["rows_inserted"], report["rows_unchanged"]) == (2, 1)  # ISO still read
        [reject] = await _rejects(client, report)
        assert (reject["_row_number"], reject["created_date"]) == (4, "31/02/2024")
        assert await _orders(db) == [
            (1, 1, 2, datetime.date(2024, 12, 1)),
            (2, 1, 1, datetime.date(2024, 12, 2)),
            (4, 1, 1, datetime.date(2024, 1, 5)),
        ]
        await db.assert_rollups_exact()

    @pytest.mark.parametrize(
        "params",
        [
            {"encoding": "no-such-codec"},
            {"encoding": "rot13"},
            {"delimiter": "x"},
            {"decimal": ";"},
            {"date_format": "%Y%m%d"},
            {"date_format": "%d/%m/%y"},
        ],
    )
    async def test_unknown_parameters_are_422(
        self, client: httpx.AsyncClient, params: dict[str, str]
    ) -> None:
        response = await upload(client, "products", PRODUCTS, params=params)
        assert_error(response, 422, "validation_error")

    async def test_wrong_encoding_asked_is_undecodable(self, client: httpx.AsyncClient) -> None:
        content = "id,name,category,price\n1,Pão,x,1\n".encode("cp1252")
        response = await upload(client, "products", content, params={"encoding": "ascii"})
        assert_error(response, 422, "undecodable")
        history = (await client.get("/uploads")).json()["items"][0]
        assert history["dialect"] is None
        assert history["error"]["code"] == "undecodable"


class TestWorkbooks:
    async def test_first_sheet_dates_integers_formulas(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        await upload(client, "products", PRODUCTS)
        book = xlsx(
            [
                ["ID", "product_id", "quantity", "created_date", "note"],
                [1, 1, 21.0, datetime.date(2024, 12, 1), "x"],
                [("=1+1", 2), 2, ("=A3*3", 6), "2024-12-02", None],
                [],
                [3, 1, 1.5, datetime.date(2024, 12, 3), None],
                [4, 1, 1, "01/12/2024", None],
            ]
        )
        response = await upload(client, "orders", book, filename="orders.csv")
        assert response.status_code == 201, response.text
        report = response.json()
        assert report["dialect"] == {
            "format": "xlsx",
            "encoding": None,
            "delimiter": None,
            "decimal": ".",
            "date_format": None,
            "timestamps": 0,
            "timezone": "America/Sao_Paulo",
        }
        assert report["rows_total"] == 4
        assert report["warnings"]  # the extra column
        assert await _orders(db) == [
            (1, 1, 21, datetime.date(2024, 12, 1)),
            (2, 2, 6, datetime.date(2024, 12, 2)),
        ]
        rejects = await _rejects(client, report)
        # Sheet rows: the header is row 1, the empty row 4 is kept in the count.
        assert [(r["_row_number"], r["_error_code"]) for r in rejects] == [
            (5, "invalid_integer"),
            (6, "invalid_date"),
        ]
        assert rejects[0]["quantity"] == "1.5"

    async def test_named_sheet_and_products_prices(self, client: httpx.AsyncClient, db: Db) -> None:
        book = xlsx(
            [
                ["id", "name", "category", "price"],
                [1, "Shirt", "Shirts", 179.34],
                [2, "Hat", "Hats", 5],
            ],
            sheet="Produtos",
            first_sheet="Capa",
        )
        response = await upload(client, "products", book, params={"sheet": "Produtos"})
        assert response.status_code == 201, response.text
        assert await _products(db) == [
            (1, "Shirt", "Shirts", D("179.34")),
            (2, "Hat", "Hats", D("5.00")),
        ]
        missing = await upload(client, "products", book, params={"sheet": "Nope"})
        assert_error(missing, 422, "undecodable")
        first = await upload(client, "products", book)  # the first sheet: no such columns
        assert_error(first, 422, "missing_columns")

    async def test_header_lower_in_the_sheet_keeps_sheet_rows(
        self, client: httpx.AsyncClient
    ) -> None:
        book = xlsx([[], [], ["id", "name", "category", "price"], [1, "a", "b", -1]])
        report = (await upload(client, "products", book)).json()
        [reject] = await _rejects(client, report)
        assert reject["_row_number"] == 4

    @pytest.mark.parametrize("fast", [True, False], ids=["as-it-comes", "fast-path-refused"])
    @pytest.mark.parametrize("variant", ["exact", "blank-row", "header-cell-breaks"])
    async def test_cells_with_line_breaks_keep_the_sheet_rows(
        self,
        client: httpx.AsyncClient,
        caplog: pytest.LogCaptureFixture,
        fast: bool,
        variant: str,
    ) -> None:
        # A name over two lines and a category over three (CRLF and LF): the rows after
        # them are still numbered as the sheet numbers them. So with an empty row (which
        # sends the file the careful way), and with an extra column whose header holds a
        # break (the same).
        rows: list[list[Any]] = [
            ["id", "name", "category", "price"],
            [1, "Two\nlines", "a\r\nb\nc", 1],
            [2, "ok", "ok", -1],
            [3, "Boné", "x\ny", "1,5"],
            [4, "ok", "ok", "x"],
        ]
        if variant == "blank-row":
            rows.insert(2, [])
        if variant == "header-cell-breaks":
            rows = [[*row, "Note\n(internal)" if i == 0 else "n\no"] for i, row in enumerate(rows)]
        taken = contextlib.nullcontext() if fast else staging.careful_path_only()
        with taken, caplog.at_level(logging.INFO, "app.uploads.service"):
            report = (await upload(client, "products", xlsx(rows))).json()
        path = "fast" if fast and variant == "exact" else "careful"
        assert any(f"rows by the {path} path" in r.getMessage() for r in caplog.records)
        assert report["rows_total"] == 4, report
        rejects = await _rejects(client, report)
        first = 4 if variant == "blank-row" else 3
        assert [(r["_row_number"], r["_error_code"]) for r in rejects] == [
            (first, "out_of_range"),
            (first + 1, "invalid_decimal"),
            (first + 2, "invalid_decimal"),
        ]
        assert rejects[1]["category"] == "x\ny"  # as received


@pytest.fixture
async def small_sheets(
    database_url: URL, tmp_path: Path, clean_db: None
) -> AsyncIterator[httpx.AsyncClient]:
    """The service with XLSX_MAX_CELLS at 1000."""
    settings = make_settings(database_url, tmp_path, xlsx_max_cells=1000)
    async for c in open_client(create_app(settings)):
        yield c


class TestWorkbookLimits:
    """What calamine would read is measured first, wherever the workbook keeps it."""

    async def test_a_sheet_kept_outside_the_worksheets_folder_is_measured(
        self, small_sheets: httpx.AsyncClient
    ) -> None:
        rows: list[list[Any]] = [["id", "name", "category", "price"], [1, "a", "b", 2]]
        fine = await upload(small_sheets, "products", xlsx_sheet_elsewhere(rows))
        assert fine.status_code == 201, fine.text
        assert fine.json()["rows_inserted"] == 1
        # 60 columns × 100 rows: past the 1000 cells allowed.
        far = await upload(small_sheets, "products", xlsx_sheet_elsewhere(rows, far_cell="BH100"))
        assert_error(far, 413, "too_large")

    async def test_an_opendocument_spreadsheet_is_refused_not_read_unmeasured(
        self, client: httpx.AsyncClient
    ) -> None:
        # calamine reads .ods too (a ZIP that is not an .xlsx), but its repeated rows and
        # columns are not measured: a few bytes can ask for gigabytes.
        for content in (
            ods([["id", "name", "category", "price"], ["1", "a", "b", "2"]]),
            ods([["id", "name", "category", "price"]], repeated=(1_000_000, 16_000)),
        ):
            response = await upload(client, "products", content)
            assert_error(response, 422, "undecodable")
            assert ".ods" in response.json()["error"]["message"]


class TestParquet:
    async def test_types_and_row_numbers(self, client: httpx.AsyncClient, db: Db) -> None:
        import pyarrow as pa

        products = parquet(
            {
                "id": pa.array([1, 2, 3], pa.int32()),
                "name": ["Shirt", "Pants", "Hat"],
                "category": pa.array(["Shirts", "Pants", "Hats"]).dictionary_encode(),
                "price": pa.array([D("179.34"), D("20.50"), D("-1.00")], pa.decimal128(12, 2)),
            }
        )
        report = (await upload(client, "products", products)).json()
        assert report["dialect"]["format"] == "parquet"
        assert report["rejects_by_code"] == {"out_of_range": 1}
        [reject] = await _rejects(client, report)
        assert reject["_row_number"] == 3  # the Parquet row, counted from 1
        orders = parquet(
            {
                "id": pa.array([1, 2, 3, 4], pa.int64()),
                "product_id": pa.array([1.0, 2.0, 1.0, 2.0], pa.float64()),
                "quantity": ["3", "1", "x", "2"],
                "created_date": pa.array(
                    [datetime.datetime(2024, 12, 1), datetime.datetime(2024, 12, 2),
                     datetime.datetime(2024, 12, 2), datetime.datetime(2024, 12, 3, 10)],
                    pa.timestamp("us"),
                ),
            },
            row_group_size=2,
        )  # fmt: skip
        report = (await upload(client, "orders", orders)).json()
        assert report["rejects_by_code"] == {"invalid_integer": 1}, report
        # A timestamp with a time of day is a date-time: its date, a local time (issue 27).
        assert report["dialect"]["timestamps"] == 1
        assert await _orders(db) == [
            (1, 1, 3, datetime.date(2024, 12, 1)),
            (2, 2, 1, datetime.date(2024, 12, 2)),
            (4, 2, 2, datetime.date(2024, 12, 3)),
        ]
        rows = [(r["_row_number"], r["_error_code"]) for r in await _rejects(client, report)]
        assert rows == [(3, "invalid_integer")]

    async def test_dates_and_a_list_column(self, client: httpx.AsyncClient, db: Db) -> None:
        import pyarrow as pa

        await upload(client, "products", PRODUCTS)
        orders = parquet(
            {
                "id": [1],
                "product_id": [1],
                "quantity": [2],
                "created_date": pa.array([datetime.date(2024, 1, 2)], pa.date32()),
                "tags": [[1, 2]],
            }
        )
        report = (await upload(client, "orders", orders)).json()
        assert report["rows_inserted"] == 1
        assert report["warnings"] == ["Columns of types with no single value left out: 'tags'."]
        bad = parquet(
            {"id": [1], "product_id": [1], "quantity": [[2]], "created_date": ["2024-01-01"]}
        )
        assert_error(await upload(client, "orders", bad), 422, "undecodable")

    async def test_decimal_columns_are_read_by_value_not_by_scale(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        import pyarrow as pa

        # decimal(18, 4), as warehouses keep prices: 179.3400 is 179.34 (2 decimals); ids
        # as decimal(12, 2): 2.00 is the integer 2, as a float 2.0 or a cell 2.0 is.
        products = parquet(
            {
                "id": pa.array([D("1.00"), D("2.00"), D("3.00"), D("4.50")], pa.decimal128(12, 2)),
                "name": ["a", "b", "c", "d"],
                "category": ["x", "x", "x", "x"],
                "price": pa.array(
                    [D("179.3400"), D("100.0000"), D("1.2345"), D("1.0000")], pa.decimal128(18, 4)
                ),
            }
        )
        report = (await upload(client, "products", products)).json()
        assert report["rejects_by_code"] == {"invalid_decimal": 1, "invalid_integer": 1}, report
        assert await _products(db) == [(1, "a", "x", D("179.34")), (2, "b", "x", D("100.00"))]
        rejects = await _rejects(client, report)
        assert [(r["_row_number"], r["id"], r["price"]) for r in rejects] == [
            (3, "3", "1.2345"),
            (4, "4.5", "1"),
        ]

    @pytest.mark.parametrize("fast", [True, False], ids=["as-it-comes", "fast-path-refused"])
    @pytest.mark.parametrize("note", [False, True], ids=["exact", "column-name-breaks"])
    async def test_strings_with_line_breaks_keep_the_parquet_rows(
        self,
        client: httpx.AsyncClient,
        caplog: pytest.LogCaptureFixture,
        fast: bool,
        note: bool,
    ) -> None:
        columns: dict[str, Any] = {
            "id": [1, 2, 3, 4],
            "name": ["Two\nlines", "ok", "three\r\nlines\n", "ok"],
            "category": ["a", "b", "c", "d"],
            "price": ["1", "-1", "2", "x"],
        }
        if note:
            columns["Note\nfor us"] = ["", "", "", ""]
        taken = contextlib.nullcontext() if fast else staging.careful_path_only()
        with taken, caplog.at_level(logging.INFO, "app.uploads.service"):
            report = (await upload(client, "products", parquet(columns, row_group_size=2))).json()
        path = "fast" if fast and not note else "careful"
        assert any(f"rows by the {path} path" in r.getMessage() for r in caplog.records)
        rows = [(r["_row_number"], r["_error_code"]) for r in await _rejects(client, report)]
        assert rows == [(2, "out_of_range"), (4, "invalid_decimal")]


class TestParquetBounds:
    """A few compressed bytes of Parquet can stand for much text (one long value that
    many rows repeat, through a dictionary or a run): it is converted a bounded piece at
    a time, and stops where a CSV upload would."""

    @staticmethod
    def _repeated(rows: int, width: int) -> bytes:
        import pyarrow as pa

        long = pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()), ["x" * width])
        ids = pa.array(range(1, rows + 1), pa.int64())
        return parquet({"id": ids, "name": long, "category": long, "price": ["1"] * rows})

    def test_each_piece_converted_is_bounded(self) -> None:
        content = self._repeated(60_000, 1000)  # about 120 MB as text
        assert len(content) < 2**20
        table = tabular_parquet.open_parquet(io.BytesIO(content), tabular.TabularLimits(), ())
        sizes = [len(chunk) for chunk in table.rows]
        assert sum(sizes) > 100 * 2**20
        assert max(sizes) <= tabular_parquet.PIECE_BYTES * 1.1

    async def test_text_past_max_upload_bytes_is_too_large(
        self, database_url: URL, tmp_path: Path, clean_db: None, db: Db
    ) -> None:
        settings = make_settings(database_url, tmp_path, max_upload_bytes=4 * 2**20)
        async for client in open_client(create_app(settings)):
            content = self._repeated(20_000, 1000)  # 40 MB as text, from a few KB
            response = await upload(client, "products", content)
            assert_error(response, 413, "too_large")
            assert "as text" in response.json()["error"]["message"]
            assert await _products(db) == []


def test_the_dialect_parameters_are_in_the_schema_schemathesis_reads() -> None:
    """tests/reliability/test_schemathesis.py generates requests from this document: the
    new parameters are in its reach on both upload operations."""
    from app.main import app

    paths = app.openapi()["paths"]
    for path in ("/uploads/products", "/uploads/orders"):
        names = {p["name"] for p in paths[path]["post"]["parameters"]}
        assert {"on_conflict", "delimiter", "decimal", "encoding", "date_format", "sheet"} <= names
