"""The summarizer: a second connection sums a new-orders upload while the first inserts
it. Its sums must give exactly the rollups the upload's own would, and when it cannot
be used (it failed, its sums are off, an id occurs twice) the upload sums for itself."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import URL, text

from app import db as app_db
from app.analytics import rollups
from app.config import Settings
from app.db import engine
from app.uploads import early_start, service, summarizer
from app.uploads.sql import orders
from tests.conftest import PRODUCTS, Db, make_settings
from tests.helpers import upload

FIRST = (
    "id,product_id,quantity,created_date\n"
    "1,1,2,'2024-12-01'\n2,2,1,'2024-12-01'\n3,1,5,'2024-12-02'\n4,3,1,'2024-12-04'\n"
    "5,9,1,'2024-12-04'\n"  # unknown product: a reject
)
# One id twice (only its first occurrence counts).
TWICE = FIRST + "2,1,9,'2024-12-05'\n"
# New ids on stored cells (12-01, 12-02), a day before them all, a day after, a gap.
SECOND = (
    "id,product_id,quantity,created_date\n"
    "100,1,1,'2024-12-01'\n101,1,3,'2024-12-02'\n102,1,4,'2024-11-30'\n"
    "103,2,2,'2024-12-03'\n104,3,7,'2024-12-09'\n105,2,1,'2024-12-01'\n"
)


@pytest.fixture
def settings(database_url: URL, tmp_path: Path) -> Settings:
    """Every new-orders upload gets a summarizer, however small."""
    return make_settings(database_url, tmp_path, summarizer_min_rows=1)


@pytest.fixture
def shipped(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The list grows by one each time a summarizer's sums ship."""
    calls: list[int] = []
    ship = rollups.ship

    async def counted(source: Any, target: Any) -> None:
        await ship(source, target)
        calls.append(1)

    monkeypatch.setattr(rollups, "ship", counted)
    return calls


async def test_its_sums_keep_the_rollups_exact(
    client: httpx.AsyncClient, db: Db, shipped: list[int]
) -> None:
    await upload(client, "products", PRODUCTS)
    first = (await upload(client, "orders", FIRST)).json()
    assert (first["rows_inserted"], first["rows_rejected"]) == (4, 1)
    await db.assert_rollups_exact()
    second = (await upload(client, "orders", SECOND)).json()
    assert second["rows_inserted"] == 6
    await db.assert_rollups_exact()
    assert len(shipped) == 2
    # 12-01 for product 1 was stored (2 units) and got 1 more; 11-30 comes before it.
    assert await db.rows(
        "SELECT created_date::text, quantity, prev_quantity, prev_sale_quantity"
        " FROM product_daily_sales WHERE product_id = 1 ORDER BY 2, 1"
    ) == [("2024-12-01", 3, 4, 4), ("2024-11-30", 4, 0, None), ("2024-12-02", 8, 3, 3)]


async def test_it_is_not_used_for_stored_ids(
    client: httpx.AsyncClient, db: Db, shipped: list[int]
) -> None:
    await upload(client, "products", PRODUCTS)
    await upload(client, "orders", FIRST)
    again = (
        await upload(client, "orders", FIRST.replace("3,1,5", "3,1,6"), on_conflict="update")
    ).json()
    assert (again["rows_updated"], again["rows_unchanged"]) == (1, 3)
    assert len(shipped) == 1  # the first upload only
    await db.assert_rollups_exact()


def wrong_sums(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rollups, "SUMMED", "SELECT 1::numeric, 1::numeric")


def failing(monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(self: summarizer.Summarizer, conn: Any) -> None:
        await conn.execute("SELECT 1 / 0")

    monkeypatch.setattr(summarizer.Summarizer, "_summarize", broken)


def failing_after_the_cells(monkeypatch: pytest.MonkeyPatch) -> None:
    """It fails once the upload has its new cells: what was written of them goes."""
    summarize = rollups.summarize

    async def broken(conn: Any, *, made: Any = None) -> None:
        async def then_fail(batch: int) -> None:
            await made(batch)
            await conn.execute("SELECT 1 / 0")

        # The upload's own fold (no cells to send) sums as ever.
        await summarize(conn, made=then_fail if made else None)

    monkeypatch.setattr(rollups, "summarize", broken)


@pytest.mark.parametrize("content", [FIRST, TWICE], ids=["ids unique", "an id twice"])
@pytest.mark.parametrize(
    ("spoil", "logged"),
    [
        (wrong_sums, "are not the upload's"),
        (failing, "DivisionByZeroError"),
        (failing_after_the_cells, "DivisionByZeroError"),
    ],
    ids=["sums that do not add up", "a failed summarizer", "failed after the new cells"],
)
async def test_the_upload_sums_itself_when_it_cannot_use_them(
    client: httpx.AsyncClient,
    db: Db,
    shipped: list[int],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    spoil: Any,
    logged: str,
    content: str,
) -> None:
    spoil(monkeypatch)
    await upload(client, "products", PRODUCTS)
    with caplog.at_level(logging.WARNING, logger="app.uploads.summarizer"):
        report = (await upload(client, "orders", content)).json()
    assert report["rows_inserted"] == 4
    assert logged in caplog.text
    assert shipped == []
    await db.assert_rollups_exact()
    assert await db.count("product_daily_sales") == 4


async def test_an_id_twice_counts_once(
    client: httpx.AsyncClient, db: Db, shipped: list[int]
) -> None:
    await upload(client, "products", PRODUCTS)
    report = (await upload(client, "orders", TWICE)).json()
    assert report["rejects_by_code"] == {"unknown_product": 1, "duplicate_in_file": 1}
    assert shipped == [1]  # the summarizer summed first occurrences only, as inserted
    await db.assert_rollups_exact()
    # Its connection went back to the pool in step: later requests read what they should.
    for _ in range(3):
        second = (await upload(client, "orders", SECOND)).json()
        assert (await client.get(f"/uploads/{second['upload_id']}")).status_code == 200
    assert len(shipped) == 2
    await db.assert_rollups_exact()


async def _until(
    db: Db, sql: str, holds: Callable[[int], bool], failure: str, **params: Any
) -> None:
    """Until the count `sql` answers `holds`; `failure` after 30 s (a bound for a bug,
    far beyond what a loaded machine takes)."""
    for _ in range(600):
        if holds((await db.rows(sql, **params))[0][0]):
            return
        await asyncio.sleep(0.05)
    pytest.fail(failure)


# Locks of one mode on products, held (granted) or waited for.
PRODUCTS_LOCKS = (
    "SELECT count(*) FROM pg_locks WHERE relation = 'products'::regclass"
    " AND mode = :mode AND granted = :granted"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


async def test_a_lock_queued_behind_the_upload_does_not_hang_it(
    client: httpx.AsyncClient,
    db: Db,
    shipped: list[int],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The upload holds its products; an exclusive lock on them queues behind it; the
    summarizer's read of products queues behind that. PostgreSQL sees no deadlock (the
    upload waits for the summarizer in Python): the summarizer must give up, not wait."""
    started, go = asyncio.Event(), asyncio.Event()
    summarize = summarizer.Summarizer._summarize

    async def held(self: summarizer.Summarizer, conn: Any) -> None:
        started.set()
        await go.wait()
        await summarize(self, conn)

    monkeypatch.setattr(summarizer.Summarizer, "_summarize", held)
    await upload(client, "products", PRODUCTS)
    loading = asyncio.create_task(upload(client, "orders", FIRST))
    await asyncio.wait_for(started.wait(), 10)
    # The summarizer starts before the upload locks its products (FOR KEY SHARE, a
    # RowShareLock on the table); the upload then waits for it, holding them.
    await _until(
        db, PRODUCTS_LOCKS, bool, "the upload never held its products",
        mode="RowShareLock", granted=True,
    )  # fmt: skip

    async def lock() -> None:
        async with db.engine.begin() as conn:
            await conn.execute(text("LOCK TABLE products IN ACCESS EXCLUSIVE MODE"))

    locking = asyncio.create_task(lock())
    try:
        await _until(
            db, PRODUCTS_LOCKS, bool, "the exclusive lock was not queued behind the upload",
            mode="AccessExclusiveLock", granted=False,
        )  # fmt: skip
        go.set()
        with caplog.at_level(logging.WARNING, logger="app.uploads.summarizer"):
            done, _ = await asyncio.wait({loading}, timeout=30)  # not cancelled if late
        assert done, "the upload hung"
        await asyncio.wait_for(locking, 10)  # granted once the upload committed
    finally:
        go.set()
        locking.cancel()  # if the upload hung, this frees it
        with contextlib.suppress(BaseException):
            await locking
    assert (await loading).status_code == 201
    assert "LockNotAvailableError" in caplog.text
    assert shipped == []
    await db.assert_rollups_exact()


@pytest.fixture
def whole_sums(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each sum of new orders took the path of a file found whole."""
    seen: list[bool] = []
    for name, whole in (("sum_new", False), ("sum_whole", True)):
        summed = getattr(orders, name)

        def recorded(plan: Any, summed: Any = summed, whole: bool = whole, **kw: Any) -> str:
            seen.append(whole)
            return str(summed(plan, **kw))

        monkeypatch.setattr(orders, name, recorded)
    return seen


BAD_DATE = "id,product_id,quantity,created_date\n200,1,1,'2024-12-01'\n201,2,1,'2024-13-01'\n"


async def test_a_whole_file_is_summed_without_judging_its_rows_again(
    client: httpx.AsyncClient, db: Db, shipped: list[int], whole_sums: list[bool]
) -> None:
    """Its verdict, found while the upload still stages, spares the sums each row's
    checks; an unknown product still counts nothing, as it inserts nothing."""
    await upload(client, "products", PRODUCTS)
    assert (await upload(client, "orders", FIRST)).json()["rejects_by_code"] == {
        "unknown_product": 1
    }
    assert whole_sums == [True]
    await db.assert_rollups_exact()
    report = (await upload(client, "orders", BAD_DATE)).json()
    assert (report["rows_inserted"], report["rows_rejected"]) == (1, 1)
    assert whole_sums == [True, False]  # a bad date: the rows are judged
    await db.assert_rollups_exact()
    assert shipped == [1, 1]


# Prices, and date-times of which the last is checked as a whole value (`fast_dates`)
# and falls on 9999-12-31 in the zone: a date asyncpg reads as `date.max`, and writes back
# as infinity, if the checked dates passed through Python's values.
PRICED_TIMES = (
    "id,product_id,quantity,created_date,unit_price\n"
    "300,1,2,2024-12-01T10:00:00-03:00,1.50\n"
    "301,2,1,'2024-12-02',\n"
    "302,3,4,9999-12-30T23:59-12:59,2.25\n"
)


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[summarizer.Summarizer]:
    """Every summarizer made, in order."""
    made: list[summarizer.Summarizer] = []
    init = summarizer.Summarizer.__init__

    def kept(self: summarizer.Summarizer, *args: Any) -> None:
        init(self, *args)
        made.append(self)

    monkeypatch.setattr(summarizer.Summarizer, "__init__", kept)
    return made


@pytest.fixture
def checks_first(monkeypatch: pytest.MonkeyPatch, made: list[summarizer.Summarizer]) -> list[bool]:
    """The upload sends its checked dates only once the summarizer has checked its rows
    and prices (otherwise it waits for them only if the summarizer has staged by then:
    a race). Grows by whether the upload took the summarizer's checks, at each upload
    that could."""
    copy_out = app_db.copy_out

    async def after_its_checks(conn: Any, query: str) -> bytes:
        with contextlib.suppress(Exception):  # failed: the upload checks for itself
            await asyncio.wait_for(asyncio.shield(made[-1]._rows_checked), 30)
        return await copy_out(conn, query)

    taken: list[bool] = []
    rows_checked = summarizer.Summarizer.rows_checked

    async def recorded(self: summarizer.Summarizer) -> Any:
        found = await rows_checked(self)
        taken.append(found is not None)
        return found

    monkeypatch.setattr(app_db, "copy_out", after_its_checks)
    monkeypatch.setattr(summarizer.Summarizer, "rows_checked", recorded)
    return taken


def _filled(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The checked tables filled with what the other connection sent, as they are."""
    filled: list[str] = []
    for table, name in ((orders.WHOLE_DATES, "create_whole_dates"),
                        (orders.WHOLE_PRICES, "create_whole_prices")):  # fmt: skip
        create = getattr(orders, name)

        def recorded(
            plan: Any, to_fill: bool = False, create: Any = create, table: str = table
        ) -> Any:
            if to_fill:
                filled.append(table)
            return create(plan, to_fill)

        monkeypatch.setattr(orders, name, recorded)
    return filled


async def test_the_checks_are_split_with_the_upload(
    client: httpx.AsyncClient,
    db: Db,
    checks_first: list[bool],
    whole_sums: list[bool],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The summarizer checks the rows and prices while the upload checks the dates, and
    each takes what the other found: the file is loaded whole and summed as one, each
    order with the day and price the checks gave it. (Neither waits for the other's
    half otherwise: here the summarizer is made to wait for the upload's dates.)"""
    check_dates = summarizer.Summarizer._check_dates

    async def when_sent(self: summarizer.Summarizer, conn: Any, sent: Any) -> bool:
        await asyncio.wait_for(asyncio.shield(self._dates_checked), 30)
        return await check_dates(self, conn, self._dates_checked.result())

    monkeypatch.setattr(summarizer.Summarizer, "_check_dates", when_sent)
    filled = _filled(monkeypatch)
    await upload(client, "products", PRODUCTS)
    report = (await upload(client, "orders", PRICED_TIMES)).json()
    assert (report["rows_inserted"], report["rows_rejected"]) == (3, 0)
    assert checks_first == [True]
    # The summarizer took the upload's dates; the upload, the summarizer's prices.
    assert sorted(filled) == [orders.WHOLE_DATES, orders.WHOLE_PRICES]
    assert whole_sums == [True]
    await db.assert_rollups_exact()
    stored = await db.rows(
        "SELECT order_id, created_date, unit_price FROM orders WHERE order_id >= 300"
        " ORDER BY order_id"
    )
    assert [(d, p) for _, d, p in stored] == [
        (date(2024, 12, 1), Decimal("1.50")),
        (date(2024, 12, 2), None),
        (date(9999, 12, 31), Decimal("2.25")),
    ]


@pytest.mark.parametrize(
    "bad_row",
    ["402,3,0,2024-12-02 23:59:59,2.25,\n", "402,3,4,2024-12-02 23:59:59,2.255,\n"],
    ids=["quantity 0", "a price with three decimals"],
)
async def test_a_file_of_date_times_with_a_row_that_fails_is_not_summed_ahead(
    client: httpx.AsyncClient,
    db: Db,
    made: list[summarizer.Summarizer],
    whole_sums: list[bool],
    bad_row: str,
) -> None:
    """The summarizer's own checks of the rows and prices found one failing: it sums
    the rows the upload inserts, judged, and nothing ahead."""
    await upload(client, "products", PRODUCTS)
    content = "".join(line for line in TIMES.splitlines(keepends=True) if "402," not in line)
    report = (await upload(client, "orders", content + bad_row)).json()
    assert (report["rows_inserted"], report["rows_rejected"]) == (2, 1)
    assert made[-1].ahead == ""
    assert whole_sums == [False]
    await db.assert_rollups_exact()


async def test_it_checks_its_own_dates_when_the_upload_has_not_sent_them(
    client: httpx.AsyncClient,
    db: Db,
    whole_sums: list[bool],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """It never waits for the upload's dates to sum (here they never come): it checks
    its own, and the file is still summed as whole, exactly."""
    monkeypatch.setattr(summarizer.Summarizer, "dates_checked", lambda self, dates: None)
    filled = _filled(monkeypatch)
    await upload(client, "products", PRODUCTS)
    report = (await upload(client, "orders", PRICED_TIMES)).json()
    assert (report["rows_inserted"], report["rows_rejected"]) == (3, 0)
    # It filled no dates of the upload's (whether the upload took its prices is a race).
    dates_filled = [table for table in filled if table == orders.WHOLE_DATES]
    assert (whole_sums, dates_filled) == ([True], [])
    await db.assert_rollups_exact()


async def test_the_upload_waits_for_its_checks_of_the_rows_once_it_has_staged(
    client: httpx.AsyncClient,
    db: Db,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Its checks of the rows take a second here, and the upload asks for them as soon
    as the summarizer has staged its copy: it waits for them rather than check the rows
    itself."""
    row_verdict = orders.row_verdict
    monkeypatch.setattr(
        orders, "row_verdict", lambda plan: f"SELECT v.* FROM ({row_verdict(plan)}) v, pg_sleep(1)"
    )
    rows_checked = summarizer.Summarizer.rows_checked

    async def once_staged(self: summarizer.Summarizer) -> Any:
        await asyncio.wait_for(self._staged.wait(), 30)
        return await rows_checked(self)

    monkeypatch.setattr(summarizer.Summarizer, "rows_checked", once_staged)
    await upload(client, "products", PRODUCTS)
    with caplog.at_level(logging.INFO, "app.uploads.service"):
        report = (await upload(client, "orders", PRICED_TIMES)).json()
    assert (report["rows_inserted"], report["rows_rejected"]) == (3, 0)
    said = [r.getMessage() for r in caplog.records if "rows by the" in r.getMessage()]
    assert "loaded whole" in said[-1] and "its checks taken" in said[-1], said
    await db.assert_rollups_exact()


async def test_the_upload_takes_its_verdict_of_the_rows(
    client: httpx.AsyncClient,
    db: Db,
    checks_first: list[bool],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A file whose rows the summarizer found failing is judged row by row, whatever the
    upload would have found: here its verdict is made to say so of a good file, whose
    rows are then all inserted one by one."""
    row_verdict = orders.row_verdict

    def failing(plan: Any) -> str:
        return (
            "SELECT n, units, false, timed, first, last"
            f" FROM ({row_verdict(plan)}) v (n, units, pass, timed, first, last)"
        )

    monkeypatch.setattr(orders, "row_verdict", failing)
    await upload(client, "products", PRODUCTS)
    with caplog.at_level(logging.INFO, "app.uploads.service"):
        report = (await upload(client, "orders", PRICED_TIMES)).json()
    assert (report["rows_inserted"], report["rows_rejected"]) == (3, 0)
    assert checks_first == [True]
    said = [r.getMessage() for r in caplog.records if "rows by the" in r.getMessage()]
    assert "loaded whole" not in said[-1], said
    await db.assert_rollups_exact()


# Every date a date-time read on its row (the fast path's quick kind): the dates the
# upload checks are then none, and the summarizer sums before they come.
TIMES = (
    "id,product_id,quantity,created_date,unit_price,order_id\n"
    "400,1,2,2024-12-01T10:00:00-03:00,1.50,9\n"
    "401,2,1,2024-12-02T01:30:00Z,,9\n"
    "402,3,4,2024-12-02 23:59:59,2.25,\n"
)
# The same with a date-time the upload checks whole: of year 9999 (its day 9999-12-31),
# or quoted (its day 2024-11-05; read on its row, it would fail).
YEAR_9999 = TIMES.replace("2024-12-02T01:30:00Z", "9999-12-30T23:59-12:59")
QUOTED = TIMES.replace("2024-12-02T01:30:00Z", "'2024-11-06T01:30:00Z'")


@pytest.mark.parametrize(
    ("content", "ahead", "days"),
    [
        (TIMES, "kept", [date(2024, 12, 1), date(2024, 12, 1), date(2024, 12, 2)]),
        (YEAR_9999, "summed again", [date(2024, 12, 1), date(9999, 12, 31), date(2024, 12, 2)]),
        (QUOTED, "summed again", [date(2024, 12, 1), date(2024, 11, 5), date(2024, 12, 2)]),
    ],
    ids=["none checked", "one checked", "one checked, failing on its row"],
)
async def test_a_file_of_date_times_is_summed_before_the_upload_checks_its_dates(
    client: httpx.AsyncClient,
    db: Db,
    made: list[summarizer.Summarizer],
    whole_sums: list[bool],
    content: str,
    ahead: str,
    days: list[date],
) -> None:
    """Every date a date-time the fast path reads on its row, and every row and price
    good: the summarizer sums the file as whole without waiting for the dates the upload
    checks, and keeps its sums if the upload checked none; if it checked one, they are
    rolled back and made again with it."""
    await upload(client, "products", PRODUCTS)
    report = (await upload(client, "orders", content)).json()
    assert (report["rows_inserted"], report["rows_rejected"]) == (3, 0)
    assert made[-1].ahead == ahead
    assert whole_sums == [True] * (1 if ahead == "kept" else 2)
    await db.assert_rollups_exact()
    stored = await db.rows(
        "SELECT created_date FROM orders WHERE order_id >= 400 ORDER BY order_id"
    )
    assert [d for (d,) in stored] == days


async def test_started_once_staged_when_it_could_not_start_while_staging(
    client: httpx.AsyncClient,
    db: Db,
    shipped: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No connection was free (here: the threshold never met) while the file was staged:
    it starts on the whole spool, with the same sums."""
    monkeypatch.setattr(early_start.EarlyStart, "SHORTEST_ROW", 10**9)
    started = summarizer.Summarizer.on_the_whole_spool
    calls: list[int] = []

    def counted(run: Any, plan: Any) -> summarizer.Summarizer:
        calls.append(1)
        return started(run, plan)

    monkeypatch.setattr(summarizer.Summarizer, "on_the_whole_spool", counted)
    await upload(client, "products", PRODUCTS)
    await upload(client, "orders", FIRST)
    await upload(client, "orders", SECOND)
    assert (calls, shipped) == ([1, 1], [1, 1])
    await db.assert_rollups_exact()


async def test_one_started_while_staging_is_let_go_when_not_needed(
    client: httpx.AsyncClient, db: Db, shipped: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """It started on the fast path's spool; then the file took the careful path (an id
    COPY could not type), or its ids were stored: it goes, and gives its connection
    back (or, mid-COPY, closes it)."""
    start = summarizer.Summarizer.start
    started: list[int] = []

    def counted(self: summarizer.Summarizer, upload_id: int) -> None:
        started.append(upload_id)
        start(self, upload_id)

    monkeypatch.setattr(summarizer.Summarizer, "start", counted)
    await upload(client, "products", PRODUCTS)
    await upload(client, "orders", FIRST)
    overflow = (
        await upload(client, "orders", SECOND + "99999999999999999999,1,1,'2024-12-01'\n")
    ).json()
    assert (overflow["rows_inserted"], overflow["rows_rejected"]) == (6, 1)
    updated = (
        await upload(client, "orders", FIRST.replace("3,1,5", "3,1,6"), on_conflict="update")
    ).json()
    assert updated["rows_updated"] == 1
    assert len(started) == 3  # one for each orders upload, while it staged
    assert shipped == [1]  # the first upload's only
    await db.assert_rollups_exact()
    summarizing = (  # this database's only: other test processes share the server
        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'orderlens summarizer%'"
        " AND datname = current_database()"
    )
    await _until(
        db, summarizing, lambda n: n == 0, "a summarizer let go is still in its transaction"
    )


@pytest.fixture
def short_idle_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """The service's connections under a server that ends a transaction idle for 300 ms."""
    monkeypatch.setitem(engine.SESSION_SETTINGS, "idle_in_transaction_session_timeout", "300ms")


async def test_waits_outlast_a_short_idle_transaction_timeout(
    short_idle_timeout: None,
    client: httpx.AsyncClient,
    db: Db,
    shipped: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The summarizer, staged, waits idle for its upload to settle; the upload waits idle
    for the sums: neither transaction is ended by the server for it."""
    settle = service._settle
    sums = summarizer.Summarizer._spool_early

    async def late(*args: Any) -> Any:
        await asyncio.sleep(1.0)
        return await settle(*args)

    async def late_sums(self: summarizer.Summarizer, conn: Any, batch: int) -> None:
        await asyncio.sleep(1.0)
        await sums(self, conn, batch)

    monkeypatch.setattr(service, "_settle", late)
    monkeypatch.setattr(summarizer.Summarizer, "_spool_early", late_sums)
    await upload(client, "products", PRODUCTS)
    report = (await upload(client, "orders", SECOND)).json()
    assert report["rows_inserted"] == 6, report
    assert shipped == [1]
    await db.assert_rollups_exact()
