"""Property: after any sequence of uploads (inserts, updates, conflicts, duplicates,
unknown products, price changes dated or not, in the past or before a product's first
price, orders with and without a unit price of their own), every rollup equals its
recomputation from orders and prices, whether the upload sums its orders itself or a
summarizer sums them beside it; with baskets (lines of one order, counted once per day,
over several uploads), too."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from tests.conftest import Db, empty_data_tables, make_settings
from tests.helpers import upload

# Days in three months, with gaps (the running units are kept per month and month-to-date).
DAYS = ["2024-04-30", "2024-05-01", "2024-05-02", "2024-05-04", "2024-05-05", "2024-07-01"]

product_rows = st.lists(
    st.tuples(
        st.integers(1, 5),
        st.sampled_from(["Shirts", "Hats", "Bags"]),
        st.sampled_from(["1.00", "2.50", "9.99", "10"]),
        st.one_of(st.none(), st.sampled_from(DAYS)),  # effective_from (None: the default)
    ),
    min_size=1,
    max_size=6,
)
order_rows = st.lists(
    st.tuples(
        st.integers(1, 12),  # or, for a fresh upload, 100 × its step more
        st.integers(1, 6),  # 6 is never a product: unknown_product
        st.integers(1, 4),
        st.sampled_from(DAYS),
        st.one_of(st.none(), st.sampled_from(["0.50", "3.00"])),  # unit_price
        st.one_of(st.none(), st.sampled_from(["17", "536365", "C9"])),  # order_id: a basket
    ),
    min_size=1,
    max_size=12,
)
step = st.one_of(
    st.tuples(st.just("products"), product_rows, st.sampled_from(["reject", "update"])),
    st.tuples(st.just("orders"), order_rows, st.sampled_from(["reject", "update", "fresh"])),
)
# Products first, so that orders find some; then anything, in any order.
steps = st.tuples(
    st.tuples(st.just("products"), product_rows, st.just("reject")),
    st.lists(step, min_size=1, max_size=6),
).map(lambda pair: [pair[0], *pair[1]])


def render(kind: str, rows: list[tuple[object, ...]], offset: int = 0) -> str:
    """The rows as a file; with an optional column (effective_from, unit_price, order_id)
    only when some row has a value for it."""
    if kind == "products":
        dated = any(row[-1] is not None for row in rows)
        body = "".join(
            f"{i},P{i},{c},{p}" + (f",{e or ''}" if dated else "") + "\n" for i, c, p, e in rows
        )
        return "id,name,category,price" + (",effective_from" if dated else "") + "\n" + body
    priced = any(row[4] is not None for row in rows)
    baskets = any(row[5] is not None for row in rows)
    body = "".join(
        f"{offset + i},{p},{q},'{d}'"  # type: ignore[operator]
        + (f",{u or ''}" if priced else "")
        + (f",{b or ''}" if baskets else "")
        + "\n"
        for i, p, q, d, u, b in rows
    )
    header = "id,product_id,quantity,created_date" + (",unit_price" if priced else "")
    return header + (",order_id" if baskets else "") + "\n" + body


@pytest.fixture(
    name="settings", params=[False, True], ids=["summed by the upload", "summed beside it"]
)
def summing_settings(request: pytest.FixtureRequest, database_url: URL, tmp_path: Path) -> Settings:
    # Summed beside it: every new-orders upload gets a summarizer, however small.
    return make_settings(database_url, tmp_path, summarizer_min_rows=1 if request.param else 10**9)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(sequence=steps)
async def test_rollups_equal_a_recomputation(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    sequence: list[tuple[str, list[tuple[object, ...]], str]],
) -> None:
    await empty_data_tables(engine)  # every example starts empty
    db = Db(engine)
    for step, (kind, rows, on_conflict) in enumerate(sequence):
        # "fresh": ids no upload used, on the days and products others did (the case a
        # summarizer takes, with stored cells around the new ones).
        offset, conflict = (100 * step, "reject") if on_conflict == "fresh" else (0, on_conflict)
        content = render(kind, rows, offset)
        response = await upload(client, kind, content, on_conflict=conflict)
        assert response.status_code == 201, response.text
        report = response.json()
        assert (
            (
                report["rows_inserted"]
                + report["rows_updated"]
                + report["rows_unchanged"]
                + report["rows_rejected"]
            )
            == report["rows_total"]
            == len(rows)
        )
        await db.assert_rollups_exact()
