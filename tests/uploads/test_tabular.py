"""Issue 25: workbooks and Parquet files are read in a process of their own, under hard
limits, and a workbook is measured the way calamine reads it before it is opened.

Each crafted file below once took the service down or held it for minutes: a 2 KB
workbook whose one far cell is written in lower case (`xfd1048576`) or zero padded
(`XFD0001048576`) made calamine ask for 550 GB and abort the process; a 25 KB workbook
whose one 20 MB shared string fills 100 cells took 259 s and 3 GB. Now the first kind is
refused by the measure, and when a native reader does die, only its upload fails.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import URL

from app.main import create_app
from app.uploads.tabular import process
from tests.conftest import API_KEY, PRODUCTS, Db, make_settings, open_client, table_counts
from tests.helpers import assert_error, live_server, reading_processes, upload
from tests.uploads.files import parquet, xlsx, xlsx_shared_string_bomb, xlsx_with_row

HEADER = ["id", "name", "category", "price"]
ROWS: list[list[Any]] = [HEADER, [1, "Shirt", "Shirts", 10.5]]
MB = 1 << 20


def far_row(cell: str, row: str | None = None, *, quote: str = '"', eq: str = "=") -> bytes:
    """One row holding one numeric cell at `cell`, written by hand."""
    row_attr = f" r{eq}{quote}{row}{quote}" if row is not None else ""
    return f"<row{row_attr}><c r{eq}{quote}{cell}{quote}><v>1</v></c></row>".encode()


async def _client(database_url: URL, tmp_path: Path, **overrides: Any) -> AsyncIterator[Any]:
    async for client in open_client(create_app(make_settings(database_url, tmp_path, **overrides))):
        yield client


async def _latest_upload(client: httpx.AsyncClient) -> dict[str, Any]:
    page = (await client.get("/uploads", headers={"X-API-Key": API_KEY})).json()
    return page["items"][0]  # type: ignore[no-any-return]


class TestWorkbookMeasure:
    """Cell references are read as calamine reads them, and checked against the format's
    bounds and XLSX_MAX_CELLS before calamine opens the sheet."""

    @pytest.mark.parametrize(
        ("row_xml", "code"),
        [
            pytest.param(far_row("xfd1048576", "1048576"), "too_large", id="lower-case"),
            pytest.param(far_row("XFD0001048576", "0001048576"), "too_large", id="zero-padded"),
            pytest.param(far_row("XFD1048576", "1048576", quote="'"), "too_large", id="quoted'"),
            pytest.param(far_row("XFD1048576", "1048576", eq=" = "), "too_large", id="spaced"),
            pytest.param(
                b'<row\tr="1048576"><c\nr="XFD1048576"><v>1</v></c></row>',
                "too_large",
                id="tab-and-newline",
            ),
            pytest.param(
                b'<x:row xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
                b' r="1048576"><x:c r="XFD1048576"><x:v>1</x:v></x:c></x:row>',
                "too_large",
                id="namespace-prefix",
            ),
            pytest.param(far_row("xfd1048576"), "too_large", id="cell-without-row-reference"),
            pytest.param(
                b"<row>" + b"<c><v>1</v></c>" * 20_000 + b"</row>"
                b'<row r="1048576"><c r="A1048576"><v>1</v></c></row>',
                "too_large",
                id="cells-without-references",
            ),
            pytest.param(far_row("A4295016872", "4295016872"), "undecodable", id="row-past-u32"),
            pytest.param(far_row("A1048577", "1048577"), "undecodable", id="row-past-last"),
            pytest.param(far_row("XFE1", "1"), "undecodable", id="column-past-XFD"),
            pytest.param(far_row("AAAA1", "1"), "undecodable", id="four-letters"),
            pytest.param(far_row("A0", "1"), "undecodable", id="row-zero"),
            pytest.param(far_row("XFD", "1"), "undecodable", id="no-row-digits"),
        ],
    )
    async def test_far_cells_are_refused_before_the_sheet_is_opened(
        self, database_url: URL, tmp_path: Path, clean_db: None, db: Db, row_xml: bytes, code: str
    ) -> None:
        content = xlsx_with_row(ROWS, row_xml)
        assert len(content) < 8 * 1024
        async for client in _client(database_url, tmp_path):
            before = await table_counts(db)
            response = await upload(client, "products", content, filename="far.xlsx")
            error = assert_error(response, 413 if code == "too_large" else 422, code)
            if code == "too_large":
                assert error["details"]["max_cells"] == 20_000_000
            assert await table_counts(db) == before
            assert (await _latest_upload(client))["status"] == "failed"
        assert reading_processes() == []

    async def test_a_workbook_at_the_last_cell_that_fits_is_read(
        self, database_url: URL, tmp_path: Path, clean_db: None, db: Db
    ) -> None:
        """The measure bounds the rectangle; it does not refuse far cells as such: a cell
        at D5000 (written in lower case) makes 5,000 × 4 cells, which XLSX_MAX_CELLS of
        20,000 admits and 19,999 does not."""
        content = xlsx_with_row(ROWS, far_row("d5000", "5000"))
        async for client in _client(database_url, tmp_path, xlsx_max_cells=20_000):
            response = await upload(client, "products", content, filename="fits.xlsx")
            assert response.status_code == 201, response.text
            report = response.json()
            assert report["rows_inserted"] == 1
            assert report["rows_rejected"] == 1  # the row at D5000: its id cell is empty
        async for client in _client(database_url, tmp_path, xlsx_max_cells=19_999):
            response = await upload(client, "products", content, filename="fits.xlsx")
            assert_error(response, 413, "too_large")


class TestSharedStrings:
    """A shared string is copied into every cell that names it: the text a workbook
    expands to is bounded like a CSV's (MAX_UPLOAD_BYTES), before calamine opens it."""

    @pytest.mark.parametrize("empty_items", [0, 50], ids=["plain", "after-empty-items"])
    async def test_one_long_string_in_many_cells_is_refused_at_once(
        self, database_url: URL, tmp_path: Path, clean_db: None, db: Db, empty_items: int
    ) -> None:
        """The issue's file: 20 MB named by 100 cells, 2 GB of text from ~25 KB."""
        content = xlsx_shared_string_bomb(ROWS, length=20 * MB, cells=100, empty_items=empty_items)
        assert len(content) < 64 * 1024
        async for client in _client(database_url, tmp_path):
            before = await table_counts(db)
            response = await upload(client, "products", content, filename="strings.xlsx")
            error = assert_error(response, 413, "too_large")
            # Refused by the measure, before calamine opens the file (the reading process
            # refuses it in 0.36-0.45 s: benchmarks/ingest/refusals.py); the sheet's own
            # limit would only have come after 2 GB of text.
            assert "shared strings" in error["message"]
            assert error["details"]["max_bytes"] == 2**30
            assert await table_counts(db) == before

    async def test_the_bound_is_the_text_not_the_string(
        self, database_url: URL, tmp_path: Path, clean_db: None, db: Db
    ) -> None:
        """With MAX_UPLOAD_BYTES at 8 MB: 1 MB in 5 cells is read (its rows are then
        rejects: the name is too long), in 9 cells refused."""
        overrides = {"max_upload_bytes": 8 * MB}
        fits = xlsx_shared_string_bomb(ROWS, length=MB, cells=5)
        too_much = xlsx_shared_string_bomb(ROWS, length=MB, cells=9)
        async for client in _client(database_url, tmp_path, **overrides):
            response = await upload(client, "products", fits, filename="fits.xlsx")
            assert response.status_code == 201, response.text
            assert response.json()["rows_total"] == 5
            response = await upload(client, "products", too_much, filename="much.xlsx")
            assert_error(response, 413, "too_large")


class TestReadingProcess:
    """Whatever ends the reading process ends its upload with a clear 4xx and a `failed`
    report, loads nothing, leaves no process behind, and the next upload works."""

    async def test_a_native_abort_costs_the_upload_only(
        self, database_url: URL, tmp_path: Path, clean_db: None, db: Db
    ) -> None:
        """The measure turned off (XLSX_MAX_CELLS of ten trillion): calamine itself asks
        for 550 GB, its allocation fails under the process's address space limit, and it
        aborts. Before issue 25 that aborted the service (here: this test process)."""
        content = xlsx_with_row(ROWS, far_row("xfd1048576", "1048576"))
        async for client in _client(database_url, tmp_path, xlsx_max_cells=10**13):
            assert (await upload(client, "products", PRODUCTS)).status_code == 201
            before = await table_counts(db)
            response = await upload(client, "products", content, filename="bomb.xlsx")
            error = assert_error(response, 413, "too_large")
            assert "PARSER_MAX_MEMORY_BYTES" in error["message"]
            assert await table_counts(db) == before
            latest = await _latest_upload(client)
            assert (latest["status"], latest["error"]["code"]) == ("failed", "too_large")
            again = await upload(client, "products", xlsx(ROWS), filename="good.xlsx")
            assert again.status_code == 201, again.text
        assert reading_processes() == []

    @pytest.mark.parametrize(
        ("death", "overrides", "status", "code", "says"),
        [
            ("abort", {}, 422, "unreadable_file", "SIGABRT"),
            ("segfault", {}, 422, "unreadable_file", "SIGSEGV"),
            ("half", {}, 422, "unreadable_file", "SIGABRT"),
            ("hang", {"parser_max_seconds": 1.0}, 413, "too_large", "PARSER_MAX_SECONDS"),
            ("spin", {"parser_max_cpu_seconds": 1}, 413, "too_large", "PARSER_MAX_CPU_SECONDS"),
            (
                "allocate",
                {"parser_max_memory_bytes": 512 * MB},
                413,
                "too_large",
                "PARSER_MAX_MEMORY_BYTES",
            ),
        ],
    )
    async def test_each_death_is_a_clear_error(
        self,
        database_url: URL,
        tmp_path: Path,
        clean_db: None,
        db: Db,
        monkeypatch: pytest.MonkeyPatch,
        death: str,
        overrides: dict[str, Any],
        status: int,
        code: str,
        says: str,
    ) -> None:
        _dying(monkeypatch, death)
        async for client in _client(database_url, tmp_path, **overrides):
            before = await table_counts(db)
            files = [("products", xlsx(ROWS)), ("orders", _orders_parquet())]
            for kind, content in files[:1] if death == "half" else files:  # half: products rows
                response = await upload(client, kind, content, filename=f"x.{kind}")
                error = assert_error(response, status, code)
                assert says in error["message"], error
                latest = await _latest_upload(client)
                assert (latest["status"], latest["error"]["code"]) == ("failed", code)
            assert await table_counts(db) == before
            monkeypatch.setattr(process, "CHILD", "app.uploads.tabular.child")
            response = await upload(client, "products", xlsx(ROWS), filename="good.xlsx")
            assert response.status_code == 201, response.text
        assert reading_processes() == []

    async def test_a_reader_that_cannot_start_is_the_service_s_trouble(
        self,
        database_url: URL,
        tmp_path: Path,
        clean_db: None,
        db: Db,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """No process to spare (here: no interpreter at that path) is a 503 to retry,
        not a 422 about the file, nor `database_unavailable`."""
        monkeypatch.setattr(process, "PYTHON", str(tmp_path / "no-such-python"))
        async for client in _client(database_url, tmp_path):
            before = await table_counts(db)
            response = await upload(client, "products", xlsx(ROWS), filename="x.xlsx")
            assert_error(response, 503, "unavailable")
            assert response.headers["retry-after"] == "5"
            assert await table_counts(db) == before
            assert (await _latest_upload(client))["status"] == "failed"

    async def test_a_reader_reaped_before_its_pidfd_is_opened_is_read_all_the_same(
        self,
        database_url: URL,
        tmp_path: Path,
        clean_db: None,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A reader that ends at once (a file refused, or read, in a few milliseconds) can
        be reaped by the child watcher before the service opens its pidfd: ESRCH. That
        was answered 503 `unavailable` (the fuzzing found it); the reader did start, and
        its output is in the pipes. Here every pidfd_open finds its process gone."""

        def gone(pid: int) -> int:
            raise ProcessLookupError(3, "No such process")

        monkeypatch.setattr(os, "pidfd_open", gone)
        async for client in _client(database_url, tmp_path):
            response = await upload(client, "products", xlsx(ROWS), filename="x.xlsx")
            assert response.status_code == 201, response.text
            refused = await upload(client, "products", b"PK\x03\x04 not a zip", filename="x.xlsx")
            assert refused.status_code == 422, refused.text
        assert reading_processes() == []

    async def test_readers_are_not_cut_off_while_uploads_crash(
        self, database_url: URL, tmp_path: Path, clean_db: None, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Real sockets, one process: 16 readers poll while workbooks whose reader aborts
        are uploaded; every read is answered, and the service still serves afterwards."""
        _dying(monkeypatch, "abort")
        settings = make_settings(database_url, tmp_path)
        with live_server(create_app(settings)) as base:
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                assert (await upload(client, "products", PRODUCTS)).status_code == 201
                stop = asyncio.Event()
                statuses: list[int] = []

                async def read() -> None:
                    async with httpx.AsyncClient(base_url=base, timeout=30) as reader:
                        while True:  # one read at least, however fast the uploads go
                            statuses.append((await reader.get("/kpis")).status_code)
                            if stop.is_set():
                                return

                readers = [asyncio.create_task(read()) for _ in range(16)]
                crashes = []
                for _ in range(5):
                    response = await upload(client, "products", xlsx(ROWS), filename="x.xlsx")
                    crashes.append(response.status_code)
                stop.set()
                await asyncio.gather(*readers)
                assert crashes == [422] * 5
                assert statuses and set(statuses) == {200}, set(statuses)
                assert (await client.get("/healthz")).status_code == 200
        assert reading_processes() == []


def _dying(monkeypatch: pytest.MonkeyPatch, death: str) -> None:
    """The stand-in reader in the real one's place, told how to die."""
    monkeypatch.setattr(process, "CHILD", "tests.uploads.dying_reader")
    monkeypatch.setattr(
        process, "PASSED_ENVIRONMENT", (*process.PASSED_ENVIRONMENT, "ORDERLENS_TEST_DEATH")
    )
    monkeypatch.setenv("ORDERLENS_TEST_DEATH", death)


def test_the_reader_sees_no_secret_of_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader taken over by a file finds neither the database nor any key."""
    for name in ("DATABASE_URL", "API_KEY", "READ_API_KEYS", "FX_API_KEY"):
        monkeypatch.setenv(name, "secret")
    env = process.reader_environment()
    assert not {n for n, v in env.items() if "secret" in v}
    assert set(env) <= {
        *process.PASSED_ENVIRONMENT,
        "PYTHONPATH",
        "OPENBLAS_NUM_THREADS",
        "OMP_NUM_THREADS",
    }


def _orders_parquet() -> bytes:
    return parquet({"id": [1], "product_id": [1], "quantity": [2], "created_date": ["2024-12-01"]})
