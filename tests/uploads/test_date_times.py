"""Issue 27, item 2: `created_date` as real exports write it, a date-time, read as its
date in BUSINESS_TIMEZONE; date-only files exactly as before."""

from __future__ import annotations

import datetime
import logging
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import URL

from app import db as app_db
from app.main import create_app
from app.uploads import fixed_offset
from app.uploads.dialect import Dialect
from app.uploads.models import OnConflict, UploadKind
from app.uploads.plan import Plan, StagingPath
from tests.conftest import PRODUCTS, Db, make_settings, open_client, require_online_retail
from tests.helpers import upload
from tests.uploads.files import parquet, xlsx

D = datetime.date

# (created_date as written, its date in America/Sao_Paulo (UTC-3, no DST since 2019)).
READ = [
    ("2024-11-06T01:30:00Z", D(2024, 11, 5)),  # the example: 22:30 the day before
    ("2024-11-06t02:59:59.999999z", D(2024, 11, 5)),
    ("2024-11-06T03:00:00Z", D(2024, 11, 6)),  # midnight there
    ("2024-11-06T01:30:00-03:00", D(2024, 11, 6)),
    ("2024-11-06T23:30:00-0500", D(2024, 11, 7)),  # 04:30 UTC, 01:30 there
    ("2024-11-06T12:00+14", D(2024, 11, 5)),
    ("2024-11-06 01:30", D(2024, 11, 6)),  # no offset: a local time there
    ("2017-09-19 14:03:00", D(2017, 9, 19)),  # the real export's form
    ("'2024-11-06 23:59:59'", D(2024, 11, 6)),  # quoted, as the assessment's dates are
    ("2024-02-29T10:00:00.5", D(2024, 2, 29)),
    ("9999-12-31T23:00:00-05:00", None),  # year 10000 there: not a date we store
]
REFUSED = [
    "2024-02-30T10:00:00Z",  # no such day
    "2024-11-06T24:00:00",  # no such hour
    "2024-11-06T10:60",
    "2024-11-06T10:00+15:00",  # no such offset
    "2024-11-06T10",
    "2024-04-31T10:00:00Z",  # no such day, with an offset: never cast
]
# Refused too, but their bytes (letters, `/`, a field starting `00`) send a file to the
# careful path.
REFUSED_CAREFULLY = [
    "0001-01-01T00:30:00+01:00",  # before year 1 in UTC
    "2024-11-06T10:00:00 UTC",  # a zone name is not an offset
    "06/11/2024 10:00",
]


def _file(values: list[str], *, ragged: bool = False, first_id: int = 1) -> str:
    lines = ["id,product_id,quantity,created_date"]
    lines += [f'{i},1,1,"{v}"' for i, v in enumerate(values, start=first_id)]
    if ragged:  # a row with a field too many sends the file down the careful path
        lines.append(f"{first_id + len(values)},1,1,2024-01-01,extra")
    return "\n".join(lines) + "\n"


async def _stored(db: Db) -> dict[int, datetime.date]:
    return dict(await db.rows("SELECT order_id, created_date FROM orders"))


async def _post(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, content: str, path: str
) -> dict[str, Any]:
    """Upload orders; the path the service logged for them must be `path`."""
    with caplog.at_level(logging.INFO, "app.uploads.service"):
        response = await upload(client, "orders", content)
    assert response.status_code == 201, response.text
    said = [r.getMessage() for r in caplog.records if "rows by the" in r.getMessage()]
    assert f"by the {path} path" in said[-1], said
    report: dict[str, Any] = response.json()
    return report


class TestDateTimes:
    @pytest.mark.parametrize("path", ["fast", "careful"])
    async def test_each_date_time_is_its_date_in_the_business_zone(
        self, client: httpx.AsyncClient, db: Db, caplog: pytest.LogCaptureFixture, path: str
    ) -> None:
        await upload(client, "products", PRODUCTS)
        refused = REFUSED + (REFUSED_CAREFULLY if path == "careful" else [])
        values = [v for v, _ in READ] + refused
        report = await _post(client, caplog, _file(values, ragged=path == "careful"), path)
        assert report["dialect"]["timezone"] == "America/Sao_Paulo"
        # The date-times read as dates, not those refused as invalid_date (nor the
        # date-time whose date in the zone is in year 10000).
        assert report["dialect"]["timestamps"] == len(READ) - 1
        expected = {i: d for i, (_, d) in enumerate(READ, start=1) if d is not None}
        assert await _stored(db) == expected
        codes = report["rejects_by_code"]
        assert codes.pop("invalid_date") == len(refused) + 1  # and the year-10000 one
        assert codes == ({"wrong_field_count": 1} if path == "careful" else {})
        rejects = (await client.get(report["rejects_url"])).json()["items"]
        shown = {r["created_date"] for r in rejects if r["_error_code"] == "invalid_date"}
        assert shown == {*refused, "9999-12-31T23:00:00-05:00"}  # as the file had them
        await db.assert_rollups_exact()

    async def test_a_date_only_file_reads_as_before_and_counts_no_date_time(
        self, client: httpx.AsyncClient, db: Db
    ) -> None:
        await upload(client, "products", PRODUCTS)
        content = "id,product_id,quantity,created_date\n1,1,1,'2024-11-06'\n2,1,1,2024-11-07\n"
        report = (await upload(client, "orders", content)).json()
        assert report["dialect"]["timestamps"] == 0
        assert await _stored(db) == {1: D(2024, 11, 6), 2: D(2024, 11, 7)}
        products = (await upload(client, "products", PRODUCTS)).json()
        assert products["dialect"]["timestamps"] is None  # products have no dates


async def test_workbook_and_parquet_date_times(client: httpx.AsyncClient, db: Db) -> None:
    """A workbook's date-time cell and Parquet's timestamps (naive: a local time; with a
    zone: the instant, read in the business zone) take the same rules."""
    import pyarrow as pa

    await upload(client, "products", PRODUCTS)
    book = xlsx(
        [
            ["id", "product_id", "quantity", "created_date"],
            [1, 1, 1, datetime.datetime(2024, 11, 6, 23, 30)],
            [2, 1, 1, datetime.date(2024, 11, 7)],
        ]
    )
    report = (await upload(client, "orders", book, filename="orders.xlsx")).json()
    assert (report["rows_inserted"], report["dialect"]["timestamps"]) == (2, 1), report
    instants = [datetime.datetime(2024, 11, 8, 1, 30, tzinfo=datetime.UTC)] * 2
    table = parquet(
        {
            "id": [3, 4],
            "product_id": [1, 1],
            "quantity": [1, 1],
            "created_date": pa.array(instants, pa.timestamp("ns", tz="UTC")),
        }
    )
    report = (await upload(client, "orders", table, filename="orders.parquet")).json()
    assert (report["rows_inserted"], report["dialect"]["timestamps"]) == (2, 2), report
    assert await _stored(db) == {
        1: D(2024, 11, 6),
        2: D(2024, 11, 7),
        3: D(2024, 11, 7),  # 01:30 UTC is 22:30 the day before in São Paulo
        4: D(2024, 11, 7),
    }


@pytest.fixture
async def utc_client(
    database_url: URL, tmp_path: Path, clean_db: None
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(database_url, tmp_path, business_timezone="Asia/Tokyo"))
    async for c in open_client(app):
        yield c


async def test_the_zone_is_the_setting(utc_client: httpx.AsyncClient, db: Db) -> None:
    """BUSINESS_TIMEZONE=Asia/Tokyo (UTC+9): 2024-11-06T20:00Z is the 7th there, and a
    time without an offset is still its own date."""
    await upload(utc_client, "products", PRODUCTS)
    content = _file(["2024-11-06T20:00:00Z", "2024-11-06T01:30:00Z", "2024-11-06 23:00"])
    report: dict[str, Any] = (await upload(utc_client, "orders", content)).json()
    assert report["dialect"]["timezone"] == "Asia/Tokyo"
    assert await _stored(db) == {1: D(2024, 11, 7), 2: D(2024, 11, 6), 3: D(2024, 11, 6)}


def test_a_zone_that_is_not_an_iana_name_is_refused_at_start(
    database_url: URL, tmp_path: Path
) -> None:
    for bad in ("Nowhere/City", "UTC'; DROP TABLE orders; --", ""):
        with pytest.raises(ValueError, match="BUSINESS_TIMEZONE"):
            make_settings(database_url, tmp_path, business_timezone=bad)


def _random_values(count: int, seed: int) -> list[str]:
    """Date-times and near misses from pieces, each piece real 4 times in 5: real and
    unreal dates, separators, times, fractions, offsets, case."""
    import random

    rng = random.Random(seed)
    pieces = [
        (["2024-02-29", "2024-12-31", "1000-01-01", "9999-12-31", "2000-02-29", "1999-01-31"],
         ["2023-02-29", "2024-02-30", "2024-13-01", "2024-04-31", "2024-00-10", "1900-02-29",
          "2024-1-05", "20240105"]),
        (["T", "t", " "], ["  ", "tT", ""]),
        (["00:00", "23:59", "12:30:59", "12:30:59.123456789", "07:05:00.5"],
         ["24:00", "12:60", "7:05", "12:30:60", "12:30:59.1234567890", "12:30:5", "12:30:59."]),
        (["", "Z", "z", "+14", "-03:00", "-0300", "+05:30", "+0530", "-12:59", "+14:59"],
         ["+15", "+14:60", "+1", "+3", "-03:0", "Zz", "T"]),
    ]  # fmt: skip
    out: set[str] = set()
    while len(out) < count:
        out.add("".join(rng.choice(good if rng.random() < 0.8 else bad) for good, bad in pieces))
    return sorted(out)


async def test_the_fast_and_careful_paths_read_date_times_alike(
    client: httpx.AsyncClient, db: Db, caplog: pytest.LogCaptureFixture
) -> None:
    """The fast path checks a date-time by its parts (checks.fast_dates), the careful
    path as one value (rules.date_time_in): on 400 values built to hit every edge, both
    store the same dates and reject the same rows."""
    await upload(client, "products", PRODUCTS)
    values = _random_values(400, seed=27)
    answers = []
    for path, first in (("fast", 1), ("careful", 10_001)):
        content = _file(values, ragged=path == "careful", first_id=first)
        report = await _post(client, caplog, content, path)
        rejects = (await client.get(report["rejects_url"], params={"limit": 1000})).json()
        bad = sorted(
            r["_row_number"] for r in rejects["items"] if r["_error_code"] == "invalid_date"
        )
        stored = {
            i - first: d for i, d in (await _stored(db)).items() if first <= i < first + 10_000
        }
        answers.append((stored, bad))
    fast, careful = answers
    assert fast == careful
    assert 50 < len(fast[0]) < 350  # both kinds are among them


async def test_a_real_shops_lines_load_by_their_own_names_and_timestamps(
    client: httpx.AsyncClient, db: Db
) -> None:
    """The real shop's export (Parquet: `InvoiceDate` a timestamp without a zone, its own
    header names), its first 300 lines of numeric stock codes sold, given a line number:
    every line loads, each on its invoice's local date, at the unit price it was sold at,
    as a line of its invoice (issue 27: baskets, prices charged)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    real = pq.read_table(require_online_retail())
    numeric = pc.match_substring_regex(real["StockCode"], "^[0-9]+$")
    lines = real.filter(pc.and_(numeric, pc.greater(real["Quantity"], 0))).slice(0, 300)
    codes = sorted({int(c) for c in lines["StockCode"].to_pylist()})
    products = "id,name,category,price\n" + "".join(f"{c},Item {c},Retail,1.00\n" for c in codes)
    assert (await upload(client, "products", products)).status_code == 201
    export = lines.add_column(0, "Line", pa.array(range(1, 301)))
    out = pa.BufferOutputStream()
    pq.write_table(export, out)
    mapping = (
        "id=Line,product_id=StockCode,quantity=Quantity,created_date=InvoiceDate,"
        "order_id=InvoiceNo,unit_price=UnitPrice"
    )
    response = await upload(
        client, "orders", out.getvalue().to_pybytes(), filename="retail.parquet",
        params={"columns": mapping},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    report = response.json()
    assert (report["rows_inserted"], report["rows_rejected"]) == (300, 0), report
    assert report["dialect"]["timestamps"] == 300  # every InvoiceDate has a time of day
    assert report["warnings"][0].startswith("Extra columns ignored: 'Description'")
    invoiced = [t.date() for t in lines["InvoiceDate"].to_pylist()]
    stored = await _stored(db)
    assert [stored[i] for i in range(1, 301)] == invoiced
    # Revenue at the prices charged (exact: the prices as written), orders per invoice.
    rows = lines.to_pylist()
    charged = sum(Decimal(str(r["UnitPrice"])) * r["Quantity"] for r in rows)
    [(revenue, orders)] = await db.rows("SELECT sum(revenue_brl), sum(orders) FROM daily_sales")
    assert revenue == charged
    assert orders == len({(r["InvoiceNo"], r["InvoiceDate"].date()) for r in rows})
    await db.assert_rollups_exact()


@pytest.fixture(params=["summed aside", "summed by the upload"])
async def whole_client(
    request: pytest.FixtureRequest, database_url: URL, tmp_path: Path, clean_db: None
) -> AsyncIterator[httpx.AsyncClient]:
    """A service whose summarizer sums every upload beside its insert, or none."""
    min_rows = 1 if request.param == "summed aside" else 10**9
    app = create_app(make_settings(database_url, tmp_path, summarizer_min_rows=min_rows))
    async for c in open_client(app):
        yield c


def _good_values() -> list[str]:
    """Every combination of the real pieces of `_random_values`, and real date-times that
    the fast path leaves to its per-value check (`checks.fast_dates`): quoted, spaced,
    of year 9999, and local times in São Paulo's old summer-time gap and overlap."""
    days = ["2024-02-29", "2024-12-31", "1000-01-01", "9999-12-30", "2000-02-29", "1999-01-31"]
    times = ["00:00", "23:59", "12:30:59", "12:30:59.123456789", "07:05:00.5"]
    zones = ["", "Z", "z", "+14", "-03:00", "-0300", "+05:30", "+0530", "-12:59", "+14:59"]
    values = [f"{d}{s}{t}{z}" for d in days for s in "Tt " for t in times for z in zones]
    return [
        *values,
        "'2024-11-06T01:30:00Z'",
        "'2024-11-06T01:30:00-03:00 '",  # (a field that starts with a space is not fast)
        "' 2024-11-06 23:59:59'",
        "2018-11-04T00:30:00",  # no such local time there (clocks went 00:00 → 01:00)
        "2018-11-03T23:30:00-02:00",
        "2019-02-16T23:30:00",  # twice there (clocks went 00:00 → 23:00)
        "2019-02-17T02:30:00Z",
        "2024-11-06",  # and dates beside them
        "'2024-11-07'",
    ]


async def test_a_whole_file_of_date_times_stores_the_careful_paths_dates(
    whole_client: httpx.AsyncClient, db: Db, caplog: pytest.LogCaptureFixture
) -> None:
    """A file whose every row passes is loaded whole, and its date-times whose parts pass
    the fast path's checks are read on their rows (`checks.fast_day`), summed beside the
    insert or by the upload: the dates stored, and the rollups, are what the careful path
    (each value checked whole by `rules.date_time_in`) gives."""
    client = whole_client
    await upload(client, "products", PRODUCTS)
    values = _good_values()
    stored = []
    for path, first in (("fast", 1), ("careful", 10_001)):
        content = _file(values, first_id=first)
        if path == "careful":  # a last row of its own that sends the file that way
            content += f"{first + len(values)},1,1,2024-01-01,extra\n"
        report = await _post(client, caplog, content, path)
        assert report["rows_rejected"] == (0 if path == "fast" else 1), report
        said = [r.getMessage() for r in caplog.records if "rows by the" in r.getMessage()]
        assert ("loaded whole" in said[-1]) == (path == "fast"), said[-1]
        await db.assert_rollups_exact()
        rows = await _stored(db)
        stored.append({i - first: d for i, d in rows.items() if first <= i < first + len(values)})
    fast, careful = stored
    assert len(fast) == len(values)
    assert fast == careful
    dates = dict(zip(values, (fast[i] for i in range(len(values))), strict=True))
    assert dates["2024-02-29T00:00Z"] == D(2024, 2, 28)
    assert dates["9999-12-30T23:59-12:59"] == D(9999, 12, 31)
    assert dates["2018-11-04T00:30:00"] == D(2018, 11, 4)


# Date-times read by their date part when written in the zone's one offset through the
# file (`fixed_offset`): São Paulo, UTC-3 since 2019; and a file across its last change,
# 2018-11-04 (UTC-3 to UTC-2 at local midnight), where every value is cast. Each file is
# padded to more rows than the quarter hours its days span (`fixed_offset.span`).
IN_ITS_OFFSET = [
    "2024-01-01T00:00-03:00",
    "2024-01-01T23:59:59.999999-03:00",
    "2024-01-01T23:59:59.9999996-03:00",  # rounded to the next day by the cast: cast
    "2024-01-02 12:00:00-03:00",
    "2024-01-02T00:30:00-02:00",  # another offset: 23:30 the day before there
    "2024-01-02T01:30:00Z",  # 22:30 the day before there
    "2024-01-02T01:30:00-0300",  # the same offset written otherwise: cast
    "2024-01-03T10:00:00",  # no offset: a local time
    "2024-01-03T23:59:59-03:00",
    *["2024-01-02T12:00:00-03:00"] * 600,
]
ACROSS_A_CHANGE = [
    "2018-11-03T23:30:00-03:00",
    "2018-11-04T23:30:00-03:00",  # 00:30 on the 5th there, in UTC-2
    "2018-11-04T23:30:00-02:00",
    "2018-11-05T12:00:00-02:00",
    *["2018-11-04T12:00:00-02:00"] * 600,
]


@pytest.mark.parametrize(
    ("values", "offset"),
    [(IN_ITS_OFFSET, "-03:00"), (ACROSS_A_CHANGE, None)],
    ids=["fixed", "across"],
)
async def test_date_times_in_the_zones_own_offset_are_read_by_their_date_part(
    whole_client: httpx.AsyncClient,
    db: Db,
    caplog: pytest.LogCaptureFixture,
    values: list[str],
    offset: str | None,
) -> None:
    """A file loaded whole whose date-times are in 2024 is read by its offset, `-03:00`
    (said in the log), one across São Paulo's last change of offset is not, nor the same
    file without its padding (too few rows for the days it spans); either way each value
    is stored on the date the careful path gives it."""
    client = whole_client
    await upload(client, "products", PRODUCTS)
    stored = []
    for path, first in (("fast", 1), ("careful", 10_001)):
        content = _file(values, ragged=path == "careful", first_id=first)
        await _post(client, caplog, content, path)
        said = [r.getMessage() for r in caplog.records if "rows by the" in r.getMessage()]
        read = f"its date-times at {offset} read by date"
        assert (read in said[-1]) == (path == "fast" and offset is not None), said[-1]
        rows = await _stored(db)
        stored.append({i - first: d for i, d in rows.items() if first <= i < first + len(values)})
    fast, careful = stored
    assert fast == careful
    assert len(fast) == len(values)
    days = {v: fast[i] for i, v in enumerate(values)}
    unpadded = _file(values[:9], first_id=20_001)
    await _post(client, caplog, unpadded, "fast")
    said = [r.getMessage() for r in caplog.records if "rows by the" in r.getMessage()]
    assert "read by date" not in said[-1], said[-1]
    assert {i - 20_001: d for i, d in (await _stored(db)).items() if i > 20_000} == {
        i: fast[i] for i in range(len(values[:9]))
    }
    if offset is None:
        assert days["2018-11-04T23:30:00-03:00"] == D(2018, 11, 5)
    else:
        assert days["2024-01-01T23:59:59.9999996-03:00"] == D(2024, 1, 2)
        assert days["2024-01-02T00:30:00-02:00"] == D(2024, 1, 1)
    await db.assert_rollups_exact()


@pytest.mark.parametrize(
    ("zone", "first", "last", "offset", "rows"),
    [
        ("America/Sao_Paulo", "2023-01-01T00:00", "2024-12-31T23:59", "-03:00", 10**6),
        ("America/Sao_Paulo", "2018-10-01 10:00", "2018-12-01 10:00", None, 10**6),
        (
            "America/Sao_Paulo",
            "2019-02-17T00:00",
            "2019-03-01T00:00",
            None,
            10**6,
        ),  # changed that day
        ("America/Sao_Paulo", "2019-02-19T00:00", "2019-03-01T00:00", "-03:00", 10**6),
        ("Asia/Kolkata", "2024-01-01T00:00", "2024-12-31T00:00", "+05:30", 10**6),
        ("UTC", "2000-01-01T00:00", "2009-12-31T00:00", "+00:00", 10**6),
        ("UTC", "2000-01-01T00:00", "2010-12-31T00:00", None, 10**6),  # more than MAX_DAYS
        ("Europe/Berlin", "2024-01-01T00:00", "2024-12-31T00:00", None, 10**6),
        ("Europe/Berlin", "2024-11-01T00:00", "2024-12-31T00:00", "+01:00", 10**6),
        ("UTC", "2024-13-01T00:00", "2024-12-31T00:00", None, 10**6),  # not a date
        ("UTC", "9999-12-31", "9999-12-31", "+00:00", 10**6),  # asyncpg's infinity: sent as text
        ("UTC", "0001-01-01", "0001-01-01", "+00:00", 10**6),  # its day before is in 1 BC
        ("UTC", None, None, None, 10**6),  # no date-times
        ("America/Sao_Paulo", "2024-01-01T00:00", "2024-01-31T00:00", None, 3167),  # too few rows
        ("America/Sao_Paulo", "2024-01-01T00:00", "2024-01-31T00:00", "-03:00", 3168),
    ],
)
async def test_the_zones_one_offset_through_a_files_days(
    database_url: URL,
    zone: str,
    first: str | None,
    last: str | None,
    offset: str | None,
    rows: int,
) -> None:
    """`fixed_offset.settle` finds the offset a zone keeps from the day before a file's
    first date-time to two days after its last, for a file of at least as many rows as
    those days' quarter hours, and sets it for the transaction."""
    plan = Plan(
        UploadKind.ORDERS, OnConflict.REJECT, StagingPath.FAST, ("id",), 1, 4,
        dialect=Dialect(timezone=zone),
    )  # fmt: skip
    conn = await asyncpg.connect(app_db.asyncpg_dsn(database_url))
    try:
        async with conn.transaction():
            assert await fixed_offset.settle(conn, plan, first, last, rows) == offset
            setting = await conn.fetchval(f"SELECT current_setting('{fixed_offset.SETTING}', true)")
            assert (setting or None) == offset
        after = await conn.fetchval(f"SELECT current_setting('{fixed_offset.SETTING}', true)")
        assert not after  # for the transaction only
    finally:
        await conn.close()
