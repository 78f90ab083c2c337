"""A new orders file whose every row passes is loaded whole: one pass over the staged rows
decides (`orders.verdict`), then every row is inserted without being judged alone
(`orders.load_whole`). A file with one bad row is judged row by row (`orders.load`), as
before. Both must give what judging every row gives: the same answer, report, rows and
rollups."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import httpx
import pytest
from sqlalchemy import URL

from app.config import Settings
from app.uploads import staging
from app.uploads.sql import orders as orders_sql
from app.uploads.sql import staging as sql_staging
from tests.conftest import Db, make_settings
from tests.uploads.test_both_paths import post_alone, snapshot

HEADER = "id,product_id,quantity,created_date\n"
# New ids, every product stored (the test products are 1-3), dates in both written forms.
WHOLE = HEADER + "".join(
    f"{i},{i % 3 + 1},{i % 4 + 1},2024-12-{i % 9 + 1:02d}\n"
    if i % 2
    else f"{i},{i % 3 + 1},{i % 4 + 1},'2024-11-{i % 30 + 1:02d}'\n"
    for i in range(1, 41)
)
# The same file with one row that fails, each way a row can fail alone.
ONE_BAD = {
    "quantity 0": ("17,2,0,2024-12-03\n", "out_of_range"),
    "a date that is not in the calendar": ("17,2,1,2024-02-30\n", "invalid_date"),
    "no date": ("17,2,1,\n", "missing_value"),
    "no product": ("17,,1,2024-12-03\n", "missing_value"),
    "id 0": ("0,2,1,2024-12-03\n", "out_of_range"),
    "a product not stored": ("17,9,1,2024-12-03\n", "unknown_product"),
    "an id twice": ("3,2,1,2024-12-03\n", "duplicate_in_file"),
}

# Issue 27: the same with the price charged and the basket (numeric baskets: the fast path).
PRICED = "id,product_id,quantity,created_date,unit_price,order_id\n" + "".join(
    f"{i},{i % 3 + 1},{i % 4 + 1},2024-12-{i % 9 + 1:02d},{'' if i % 5 else '1.50'},"
    f"{'' if i % 7 == 0 else 5000 + i // 3}\n"
    for i in range(1, 41)
)
PRICED_BAD = {
    "a price with three decimals": ("17,2,1,2024-12-03,1.555,9\n", "invalid_decimal"),
    "a basket too long": (f"17,2,1,2024-12-03,,{'9' * 65}\n", "too_long"),
}


def with_row(row: str, content: str = WHOLE) -> str:
    """`content` with its row 17 replaced by `row` (or `row` added, for a second id 3)."""
    lines = content.splitlines(keepends=True)
    if row.startswith("3,"):
        return "".join(lines) + row
    return "".join(line for line in lines if not line.startswith("17,")) + row


@pytest.fixture(params=["summed aside", "summed by the upload"])
def settings(request: pytest.FixtureRequest, database_url: URL, tmp_path: Path) -> Settings:
    """Run each test with a summarizer beside the insert, and without one."""
    min_rows = 1 if request.param == "summed aside" else 1_000_000
    return make_settings(database_url, tmp_path, summarizer_min_rows=min_rows)


def loaded_whole(caplog: pytest.LogCaptureFixture) -> list[bool]:
    return [
        "loaded whole" in r.getMessage() for r in caplog.records if "rows by the" in r.getMessage()
    ]


async def judged_row_by_row(
    client: httpx.AsyncClient, db: Db, monkeypatch: pytest.MonkeyPatch, content: str
) -> object:
    with monkeypatch.context() as patched:
        patched.setattr(orders_sql, "may_load_whole", lambda plan: False)
        return await snapshot(client, db, await post_alone(client, db, "orders", content.encode()))


# The files whose every row passes, and what each must have stored besides.
WHOLE_FILES: dict[str, tuple[str, list[tuple[str, list[tuple[int]]]]]] = {
    "plain": (WHOLE, []),
    "with prices and baskets": (
        PRICED,
        [
            ("SELECT count(*) FROM orders WHERE unit_price = 1.50", [(8,)]),
            ("SELECT count(DISTINCT basket) FROM orders", [(14,)]),
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(WHOLE_FILES))
async def test_a_file_whose_every_row_passes_is_loaded_whole_as_judging_would(
    client: httpx.AsyncClient,
    db: Db,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    name: str,
) -> None:
    content, stored = WHOLE_FILES[name]
    with caplog.at_level(logging.INFO, "app.uploads.service"):
        response = await post_alone(client, db, "orders", content.encode())
    assert loaded_whole(caplog)[-1]
    whole = await snapshot(client, db, response)
    assert whole[0] == 201
    assert whole[2]["rows_inserted"] == 40 and whole[2]["rows_rejected"] == 0
    for query, rows in stored:
        assert await db.rows(query) == rows, query
    await db.assert_rollups_exact()
    assert whole == await judged_row_by_row(client, db, monkeypatch, content)


# Each way one row can fail alone, in the plain file and in the one with prices and baskets.
BAD_ROWS = {
    **{bad: (WHOLE, *case) for bad, case in ONE_BAD.items()},
    **{bad: (PRICED, *case) for bad, case in PRICED_BAD.items()},
}


@pytest.mark.parametrize("bad", sorted(BAD_ROWS))
async def test_a_file_with_one_bad_row_is_judged_row_by_row(
    client: httpx.AsyncClient,
    db: Db,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    bad: str,
) -> None:
    base, row, code = BAD_ROWS[bad]
    content = with_row(row, base)
    with caplog.at_level(logging.INFO, "app.uploads.service"):
        response = await post_alone(client, db, "orders", content.encode())
    assert not loaded_whole(caplog)[-1]
    first = await snapshot(client, db, response)
    assert first[0] == 201
    report = first[2]
    assert report["rows_rejected"] == 1 and report["rejects_by_code"] == {code: 1}
    assert report["rows_inserted"] == report["rows_total"] - 1
    await db.assert_rollups_exact()
    assert first == await judged_row_by_row(client, db, monkeypatch, content)


@pytest.mark.parametrize("path", ["fast", "careful"])
async def test_rows_are_numbered_past_the_staging_sequence_cache(
    client: httpx.AsyncClient, db: Db, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """Staging numbers records with an identity whose values are cached
    (`staging.ORD_CACHE`): a reject beyond a cache's worth of rows, and one at each edge
    of it, still gets the line it is on."""
    monkeypatch.setattr(sql_staging, "ORD_CACHE", 1_000)
    sql_staging.create.cache_clear()
    bad = {999, 1_000, 1_001, 2_500}  # rows (the header is line 1)
    content = HEADER + "".join(
        f"{i},{i % 3 + 1},{0 if i in bad else 1},2024-12-01\n" for i in range(1, 3_001)
    )
    try:
        with contextlib.nullcontext() if path == "fast" else staging.careful_path_only():
            response = await post_alone(client, db, "orders", content.encode())
    finally:
        sql_staging.create.cache_clear()
    report = response.json()
    assert report["rows_rejected"] == len(bad)
    items = (await client.get(report["rejects_url"])).json()["items"]
    assert sorted(r["_row_number"] for r in items) == sorted(i + 1 for i in bad)


# A price of billions on units of billions: one row's amount in cents is already past a
# bigint, let alone a day's sum of them.
HUGE = "id,product_id,quantity,created_date,unit_price\n" + "".join(
    f"{i},1,2147483647,2024-12-0{i},9999999999.99\n" for i in range(1, 6)
)


@pytest.mark.parametrize(
    ("content", "cents"), [(PRICED, True), (HUGE, False)], ids=["in cents", "in numeric"]
)
async def test_prices_are_summed_in_integer_cents_when_no_sum_can_leave_a_bigint(
    client: httpx.AsyncClient,
    db: Db,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    content: str,
    cents: bool,
) -> None:
    """`orders.money_in_cents`: the largest price in cents × the file's units must fit a
    bigint; otherwise the sums take numeric. Either way the rollups are what judging
    every row gives, by the upload or by its summarizer."""
    asked: list[bool] = []
    sum_whole = orders_sql.sum_whole

    def recorded(plan: object, *, cents: bool = False) -> str:
        asked.append(cents)
        return sum_whole(plan, cents=cents)

    monkeypatch.setattr(orders_sql, "sum_whole", recorded)
    with caplog.at_level(logging.INFO, "app.uploads"):
        response = await post_alone(client, db, "orders", content.encode())
    assert loaded_whole(caplog)[-1]
    assert not [r for r in caplog.records if "summarizer failed" in r.getMessage()]
    assert asked == [cents]
    whole = await snapshot(client, db, response)
    assert whole[0] == 201 and whole[2]["rows_rejected"] == 0
    await db.assert_rollups_exact()
    assert whole == await judged_row_by_row(client, db, monkeypatch, content)
