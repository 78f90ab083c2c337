"""Both ways into staging judge alike: every file of the hostile corpus, and files in the
dialects the fast path now takes, posted once as they come (the fast path wherever COPY
can read them) and once with the fast path refused (the careful path), must give the
same answers, the same rejects and the same tables."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.uploads import staging
from tests.conftest import DATA_TABLES
from tests.helpers import upload
from tests.reliability.test_hostile_files import CASES, KINDS, Hostile
from tests.uploads.conftest import PRODUCTS, Db

TABLES = ("products", "orders", "daily_sales", "product_daily_sales", "product_sales")
REPORT = ("status", "rows_total", "rows_inserted", "rows_updated", "rows_unchanged",
          "rows_rejected", "rejects_by_code", "warnings", "columns", "error")  # fmt: skip


async def outcome(client: httpx.AsyncClient, db: Db, kind: str, content: bytes) -> Any:
    """What a user can see of one upload into an empty database."""
    async with db.engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {DATA_TABLES} RESTART IDENTITY CASCADE"))
    if kind == "orders":
        assert (await upload(client, "products", PRODUCTS)).status_code == 201
    response = await upload(client, kind, content)
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
        "SELECT order_id, product_id, quantity, created_date FROM orders ORDER BY 1, 2, 3"
    )
    return (
        response.status_code,
        (body.get("error") or {}).get("code"),
        {k: report[k] for k in REPORT},
        rejects.get("items"),
        tables,
    )


async def both_ways(
    client: httpx.AsyncClient, db: Db, monkeypatch: pytest.MonkeyPatch, kind: str, content: bytes
) -> tuple[Any, Any]:
    """The outcome as the file comes, then with the fast path refused. A file that never
    reached the fast path (its header failed, or its first bytes are not the fast path's)
    went the careful way already: it is not posted again."""
    tried: list[bool] = []
    load_fast = staging._fast

    async def spied(*args: Any) -> None:
        tried.append(True)
        await load_fast(*args)

    with monkeypatch.context() as patched:
        patched.setattr(staging, "_fast", spied)
        fast = await outcome(client, db, kind, content)
    if not tried:
        return fast, fast
    with monkeypatch.context() as patched:
        patched.setattr(staging.FastBytes, "take", lambda self, chunk: False)
        careful = await outcome(client, db, kind, content)
    return fast, careful


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_the_hostile_corpus_is_judged_alike_on_both_paths(
    client: httpx.AsyncClient, db: Db, monkeypatch: pytest.MonkeyPatch, case: Hostile
) -> None:
    for kind in KINDS:
        fast, careful = await both_ways(client, db, monkeypatch, kind, case.build(kind))
        assert fast == careful, kind


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
    with caplog.at_level(logging.INFO, logger="app.uploads.service"):
        fast, careful = await both_ways(client, db, monkeypatch, kind, content)
    paths = [r.getMessage() for r in caplog.records if "rows by the" in r.getMessage()]
    # Orders uploads follow one of products; the first upload of `kind` is the fast one.
    assert "by the fast path" in paths[1 if kind == "orders" else 0], paths
    assert fast[0] == 201
    assert fast == careful
