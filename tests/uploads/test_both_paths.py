"""Both ways into staging judge alike: a file posted as it comes (the fast path wherever
COPY can read it) and posted again with the fast path refused (the careful path) must
give the same answers, the same rejects and the same tables. Every file of the hostile
corpus goes through `judged_alike` (tests/reliability/test_hostile_files.py); the files
below are the dialects the fast path takes since issue 13."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.uploads import staging
from app.uploads.plan import StagingPath
from tests.conftest import PRODUCTS, Db, empty_data_tables
from tests.helpers import upload

TABLES = ("products", "orders", "daily_sales", "product_daily_sales", "product_sales")
REPORT = ("status", "rows_total", "rows_inserted", "rows_updated", "rows_unchanged",
          "rows_rejected", "rejects_by_code", "warnings", "columns", "error")  # fmt: skip
LOGGER = "app.uploads.service"  # its line per upload says the path the rows took


async def snapshot(client: httpx.AsyncClient, db: Db, response: httpx.Response) -> Any:
    """What a user can see of one upload: its answer, report, rejects and the tables."""
    body = response.json()
    upload_id = body.get("upload_id") or body["error"]["details"]["upload_id"]
    report = (await client.get(f"/uploads/{upload_id}")).json()
    rejects = (await client.get(f"/uploads/{upload_id}/rejects", params={"limit": 1000})).json()
    tables = {t: await db.rows(f"SELECT * FROM {t} ORDER BY 1, 2") for t in TABLES}
    # Without their timestamps, which differ between runs.
    tables["products"] = await db.rows(
        "SELECT product_id, name, category, price FROM products ORDER BY 1"
    )
    tables["orders"] = await db.rows(
        "SELECT order_id, product_id, quantity, created_date, unit_price, basket FROM orders"
        " ORDER BY 1, 2, 3"
    )
    seen = {k: report[k] for k in REPORT}
    if seen["status"] == "failed":
        # A failed upload's rows_total is its progress when it failed (written once a
        # second while it runs): how far it got in time, not a verdict of either path.
        del seen["rows_total"]
    return (
        response.status_code,
        (body.get("error") or {}).get("code"),
        seen,
        rejects.get("items"),
        tables,
    )


async def post_alone(
    client: httpx.AsyncClient, db: Db, kind: str, content: bytes
) -> httpx.Response:
    """Post one file into an empty database (orders after the test products)."""
    await empty_data_tables(db.engine)
    if kind == "orders":
        assert (await upload(client, "products", PRODUCTS)).status_code == 201
    return await upload(client, kind, content)


@contextlib.contextmanager
def fast_path_tried(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """A list that gets an item when an upload starts down the fast path."""
    tried: list[bool] = []
    load_fast = staging._fast

    async def spied(*args: Any) -> int:
        tried.append(True)
        return await load_fast(*args)

    with monkeypatch.context() as patched:
        patched.setattr(staging, "_fast", spied)
        yield tried


async def judged_alike(
    client: httpx.AsyncClient, db: Db, first: Any, kind: str, content: bytes
) -> None:
    """`first` (a snapshot of the file as it came) equals the file posted again with the
    fast path refused."""
    with staging.careful_path_only():
        careful = await snapshot(client, db, await post_alone(client, db, kind, content))
    assert first == careful, kind


def quoted(*rows: str, end: str = "\r\n") -> bytes:
    """Every field quoted, inner quotes doubled, as Excel writes."""
    fields = [[f.replace('"', '""') for f in row.split("|")] for row in rows]
    return end.join(",".join(f'"{f}"' for f in row) for row in fields).encode() + end.encode()


# Files that PostgreSQL's CSV mode reads as Python's csv module does: the fast path's.
DIALECTS: dict[str, tuple[str, bytes]] = {
    "orders-every-field-quoted-crlf": (
        "orders",
        quoted("id|product_id|quantity|created_date", "1|1|2|'2024-12-01'", "2|2|1|2024-12-02",
               "3|9|1|2024-12-02", "4|1|0|2024-12-03"),
    ),
    "orders-crlf-bom-header-any-case-and-order": (
        "orders",
        b"\xef\xbb\xbf Created_Date ,QUANTITY,Product_Id,ID\r\n'2024-12-01',2,1,1\r\n"
        b"2024-12-02,1,2,2\r\n2024-02-30,1,1,3\r\n",
    ),
    "orders-cr-line-ends": ("orders", b"id,product_id,quantity,created_date\r1,1,2,2024-12-01\r"),
    "products-quoted-commas-newlines-doubled-quotes": (
        "products",
        quoted("id|name|category|price", 'A|Shirt, "blue"|Shirts|10.00',
               "B|Two\nlines|Pants|20.50", '3|Hat ""cap""|Hats|-1', "4|Coat\r\nlong|Coats|5",
               '5|"""|Odd|1'),
    ),
    "products-crlf-unquoted": (
        "products", b"id,name,category,price\r\n1,Shirt,Shirts,10.00\r\n2,Pants,Pants,20\r\n"
    ),
    # Issue 14: other delimiters, encodings and the decimal comma.
    "orders-semicolon": (
        "orders", b"id;product_id;quantity;created_date\r\n1;1;2;'2024-12-01'\r\n2;2;1;2024-12-02\r\n"
        b"3;9;1;2024-12-02\r\n"
    ),
    "orders-pipe-quoted": ("orders", quoted("id|product_id|quantity|created_date", "1|1|2|2024-12-01").replace(b",", b"|")),
    "orders-tab-utf16": (
        "orders", "id\tproduct_id\tquantity\tcreated_date\r\n1\t1\t2\t2024-12-01\r\n".encode("utf-16")
    ),
    "products-semicolon-decimal-comma-cp1252": (
        "products",
        "id;name;category;price\r\n1;Camisa Açaí;Roupas;179,34\r\n2;Calça “slim”;Roupas;20.5\r\n"
        "3;Boné €;Chapéus;1,234\r\n4;\"Meia; par\";Roupas;\"2,00\"\r\n".encode("cp1252"),
    ),
    # Issue 27: the price charged and the basket, numeric baskets on the fast path.
    "orders-unit-price-and-basket": (
        "orders",
        b"id,product_id,quantity,created_date,unit_price,order_id\n1,1,2,2024-12-01,7.50,536365\n"
        b"2,2,1,2024-12-01,,536365\n3,1,1,2024-12-02,1.005,536366\n4,1,1,2024-12-02,10000000000,\n"
        b"5,1,1,2024-12-02,3,536366\n6,2,1,2024-12-03,.5,\n"
        b"7,1,1,2024-12-03,3," + b"9" * 65 + b"\n8,1,1,2024-12-03,1.2.3,9\n",
    ),
    "orders-quoted-basket-then-price": (
        "orders",
        quoted("order_id|id|product_id|quantity|created_date|unit_price", "17|1|1|2|2024-12-01|1.5",
               "17|2|2|1|2024-12-01|", "18|3|1|1|2024-12-01|2.555"),
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(DIALECTS))
async def test_dialects_load_on_the_fast_path_and_judge_alike(
    client: httpx.AsyncClient,
    db: Db,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    name: str,
) -> None:
    kind, content = DIALECTS[name]
    with fast_path_tried(monkeypatch), caplog.at_level(logging.INFO, "app.uploads.service"):
        first = await snapshot(client, db, await post_alone(client, db, kind, content))
    paths = [r.getMessage() for r in caplog.records if "rows by the" in r.getMessage()]
    assert "by the fast path" in paths[-1], paths  # the upload of `kind`, the last one
    assert first[0] == 201
    await judged_alike(client, db, first, kind, content)


class TestCarefulPathOnly:
    """`staging.careful_path_only`: the one way to send a file the careful way that the
    fast path would take (as `judged_alike` does), and only inside its block."""

    def test_the_plan_sets_out_on_the_careful_path_inside_the_block_only(self) -> None:
        assert staging.first_path() is StagingPath.FAST
        with staging.careful_path_only():
            assert staging.first_path() is StagingPath.CAREFUL
            with staging.careful_path_only():
                assert staging.first_path() is StagingPath.CAREFUL
            assert staging.first_path() is StagingPath.CAREFUL
        assert staging.first_path() is StagingPath.FAST

    async def test_a_fast_file_is_parsed_carefully_when_forced_and_fast_otherwise(
        self,
        client: httpx.AsyncClient,
        db: Db,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        kind, content = DIALECTS["orders-every-field-quoted-crlf"]

        async def path_taken() -> tuple[str, bool]:
            caplog.clear()
            with fast_path_tried(monkeypatch) as tried, caplog.at_level(logging.INFO, LOGGER):
                assert (await post_alone(client, db, kind, content)).status_code == 201
            lines = [r.getMessage() for r in caplog.records if "rows by the" in r.getMessage()]
            return lines[-1], bool(tried)  # the orders' line (the test products' before it)

        with staging.careful_path_only():
            line, tried = await path_taken()
        assert "by the careful path" in line and not tried, line
        line, tried = await path_taken()
        assert "by the fast path" in line and tried, line
