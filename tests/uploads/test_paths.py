"""The fast path (PostgreSQL parses the CSV) and the careful path (Python's csv module)
judge every row the same way; the fast path checks keys by set only where allowed."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import URL, text

from app import db as app_db
from app.analytics.models import ROLLUP_TABLES
from app.main import create_app
from app.uploads import staging
from app.uploads.models import UploadKind
from tests.conftest import PRODUCTS, Db, make_settings, open_client
from tests.helpers import upload

ROWS = [
    "1,1,2,'2024-12-01'",
    "2,2,1,2024-12-01",
    "3, 3 , +4 ,' 2024-12-02 '",
    "4,1,0,2024-12-01",  # out_of_range
    "5,,1,2024-12-01",  # missing_value
    "6,99,1,2024-12-01",  # unknown_product
    "2,1,1,2024-12-03",  # duplicate_in_file
    "7,1,1,2024-02-30",  # invalid_date
    "8,1,1,'2024-13-01'",  # invalid_date
    "9,1,1,2024-1-01",  # invalid_date
    "10,1,-3,2024-12-01",  # out_of_range
    "11,2147483648,1,2024-12-01",  # out_of_range
    "12,1,1,",  # missing_value
    "0,1,1,2024-12-01",  # out_of_range
]


def judged(items: list[dict[str, Any]]) -> list[tuple[int, str, str]]:
    return [(i["_row_number"], i["_error_code"], i["_error_message"]) for i in items]


async def run(
    client: httpx.AsyncClient, content: str
) -> tuple[dict[str, Any], list[tuple[int, str, str]]]:
    report = (await upload(client, "orders", content)).json()
    items = (await client.get(report["rejects_url"])).json()["items"]
    return report, judged(items)


class TestPaths:
    async def test_fast_and_careful_paths_agree(self, client: httpx.AsyncClient, db: Db) -> None:
        await upload(client, "products", PRODUCTS)
        header = "id,product_id,quantity,created_date"
        fast_report, fast_rejects = await run(client, "\n".join([header, *ROWS]) + "\n")
        async with db.engine.begin() as conn:  # the same rows again, as new ones
            await conn.execute(text(f"TRUNCATE orders, {', '.join(ROLLUP_TABLES)}"))
        # A quoted field anywhere sends the whole file down the careful path.
        careful_rows = [*ROWS[:-1], '"0",1,1,2024-12-01']
        careful_report, careful_rejects = await run(
            client, "\n".join([header, *careful_rows]) + "\n"
        )
        keys = ("rows_total", "rows_inserted", "rows_rejected", "rejects_by_code")
        assert {k: fast_report[k] for k in keys} == {k: careful_report[k] for k in keys}
        assert fast_rejects == careful_rejects
        assert fast_report["rejects_by_code"] == {
            "out_of_range": 4,
            "missing_value": 2,
            "unknown_product": 1,
            "duplicate_in_file": 1,
            "invalid_date": 3,
        }
        await db.assert_rollups_exact()

    async def test_fast_path_rejects_keep_the_fields(self, client: httpx.AsyncClient) -> None:
        await upload(client, "products", PRODUCTS)
        _, rejects = await run(client, "id,product_id,quantity,created_date\n4,1,0,'2024-12-01'\n")
        report = (await client.get("/uploads")).json()["items"][0]
        [item] = (await client.get(report["rejects_url"])).json()["items"]
        assert [item["id"], item["product_id"], item["quantity"], item["created_date"]] == [
            "4", "1", "0", "'2024-12-01'",
        ]  # fmt: skip
        assert rejects == [(2, "out_of_range", "quantity '0' is outside 1 to 2147483647")]


@pytest.fixture
async def limited_client(
    database_url: URL, tmp_path: Path, clean_db: None
) -> AsyncIterator[httpx.AsyncClient]:
    """The service connected as an ordinary role, which may not skip key triggers."""
    conn = await asyncpg.connect(app_db.asyncpg_dsn(database_url))
    try:
        await conn.execute(
            "DO $$ BEGIN CREATE ROLE orderlens_limited LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;"
            " GRANT USAGE, CREATE ON SCHEMA public TO orderlens_limited;"
            " GRANT ALL ON ALL TABLES IN SCHEMA public TO orderlens_limited;"
            " GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO orderlens_limited;"
            f' GRANT TEMPORARY ON DATABASE "{database_url.database}" TO orderlens_limited;'
        )
    finally:
        await conn.close()
    settings = make_settings(database_url.set(username="orderlens_limited"), tmp_path)
    async for c in open_client(create_app(settings)):
        yield c
    conn = await asyncpg.connect(app_db.asyncpg_dsn(database_url))
    try:  # roles belong to the whole server: leave none behind
        await conn.execute("DROP OWNED BY orderlens_limited; DROP ROLE orderlens_limited")
    finally:
        await conn.close()


class TestKeyChecks:
    async def test_ordinary_role_loads_with_the_foreign_key_trigger(
        self, limited_client: httpx.AsyncClient, db: Db
    ) -> None:
        await upload(limited_client, "products", PRODUCTS)
        report, _ = await run(
            limited_client, "\n".join(["id,product_id,quantity,created_date", *ROWS]) + "\n"
        )
        assert report["rows_inserted"] == 3
        assert report["rows_rejected"] == 11
        await db.assert_rollups_exact()
        assert await db.rows(
            "SELECT count(*) FROM orders o LEFT JOIN products p USING (product_id) WHERE p.product_id IS NULL"
        ) == [(0,)]

    async def test_no_order_ever_lacks_its_product(self, client: httpx.AsyncClient, db: Db) -> None:
        await upload(client, "products", PRODUCTS)
        await run(client, "\n".join(["id,product_id,quantity,created_date", *ROWS]) + "\n")
        assert await db.rows(
            "SELECT count(*) FROM orders o LEFT JOIN products p USING (product_id) WHERE p.product_id IS NULL"
        ) == [(0,)]
        # The constraint is still declared and valid for every other writer.
        assert await db.rows(
            "SELECT convalidated FROM pg_constraint WHERE conname = 'fk_orders_product_id_products'"
        ) == [(True,)]


def _non_canonical(data: bytes, delimiter: bytes = b",") -> bool:
    """The oracle: a field of `data` (whole) starts with a sign, a blank or a leading zero,
    or ends with a blank (the fast path's rule for orders, as one regex)."""
    d = re.escape(delimiter)
    blank = b" " if delimiter == b"\t" else b" \t"  # a tab is a blank unless it separates
    starts = rb"(?:^|(?<=[" + d + rb'\r\n]))"?(?:[+\-' + blank + rb"]|0[0-9])"
    ends = rb"(?<=[" + blank + rb'])"?(?:[' + d + rb"\r\n]|$)"
    pattern = starts + b"|" + ends
    return re.search(pattern, data) is not None


def _takes(data: bytes, cuts: list[int], delimiter: str = ",") -> bool:
    checker = staging.FastBytes(UploadKind.ORDERS, delimiter)
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    return (
        all(checker.take(data[a:b]) for a, b in itertools.pairwise(bounds)) and checker.finished()
    )


ORDER_FIELD = st.one_of(
    st.sampled_from(["1", "0", "10", "05", "+5", "-3", " 4", "4 ", '"7"', '"07"', '" 7"', "",
                     "2024-12-01", "'2024-12-01'", "' 2024-12-01 '", "\t2", "00"]),
    st.text(alphabet="0123456789-+ \"'", max_size=4),
)  # fmt: skip


class TestFastBytes:
    """The fast path's byte checks for orders (staging.FastBytes), chunk by chunk."""

    @given(
        rows=st.lists(st.lists(ORDER_FIELD, min_size=4, max_size=4), min_size=1, max_size=6),
        cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=4),
        delimiter=st.sampled_from([",", ";", "\t"]),
    )
    @settings(max_examples=400, deadline=None)
    def test_a_non_canonical_field_is_never_taken_wherever_the_chunks_end(
        self, rows: list[list[str]], cuts: list[int], delimiter: str
    ) -> None:
        data = "\n".join(delimiter.join(row) for row in rows).encode()
        if _non_canonical(data, delimiter.encode()):
            assert not _takes(data, cuts, delimiter)

    @pytest.mark.parametrize("cut", range(17, 23))
    def test_a_leading_zero_split_across_chunks_is_found(self, cut: int) -> None:
        data = b"1,1,2,2024-12-01\n2,05,1,2024-12-01\n"  # `05` at 19 and 20
        assert not _takes(data, [cut])

    @pytest.mark.parametrize(
        "data",
        [
            b"1,1,2,2024-12-01\n2,10,1,2024-12-02\n",
            b'"1","1","2","2024-12-01"\r\n"2","10","0","2024-12-02"\r\n',
            b"1,1,2,'2024-12-01'\n2,2,1,' 2024-12-02 '\n3,3,3,2024-12-03",
            b"1,,2,2024-12-01\n",
        ],
    )
    def test_canonical_fields_are_taken(self, data: bytes) -> None:
        assert not _non_canonical(data)
        assert _takes(data, [5, 17, 30])


class TestReadAhead:
    """staging.read_ahead: the next chunk is made while the last one is sent."""

    async def test_the_next_chunk_is_read_while_one_is_used_and_none_is_lost(self) -> None:
        read: list[int] = []

        async def source() -> AsyncIterator[bytes]:
            for n in range(5):
                read.append(n)
                yield str(n).encode()

        stream = source()
        ahead = staging.read_ahead(stream)
        assert await anext(ahead) == b"0"
        await asyncio.sleep(0)  # the consumer waits (a socket draining): the next is read
        assert read == [0, 1]
        assert await anext(ahead) == b"1"
        await ahead.aclose()  # closed early: the chunk in flight is finished, not cancelled
        assert read == [0, 1, 2]
        # The stream goes on for whoever reads it next (the careful path): the chunk read
        # ahead was consumed (the fast path spooled it), the rest is intact.
        assert [chunk async for chunk in stream] == [b"3", b"4"]
