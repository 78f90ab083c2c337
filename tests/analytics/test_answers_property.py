"""Properties of the read answers on random data and random periods:
- kept answers (the second request, from memory) are byte for byte the answers of a
  service that keeps none, and both the figures recomputed from `orders` for the period;
- the growth leaders kept per day stay exact through any sequence of uploads with full
  lists (more products a day than leaders kept), and top growth read from them equals
  top growth read from every product-day."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import URL, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.analytics.rollups import LEADERS_PER_DAY
from app.main import create_app
from tests.conftest import Db, empty_data_tables, make_settings, open_client
from tests.helpers import upload

FIRST = date(2024, 4, 29)  # the days straddle a month: periods read two months' units
DAYS = 6

products = st.lists(
    st.tuples(
        st.sampled_from(["Hats", "Bags", "Shoes", "Caps"]),
        st.sampled_from(["1.05", "2.50", "9.99", "0.35"]),
    ),
    min_size=2,
    max_size=6,
)
orders = st.lists(
    st.tuples(st.integers(1, 6), st.integers(1, 9), st.integers(0, DAYS - 1)),
    min_size=1,
    max_size=30,
)
periods = st.lists(
    st.tuples(st.integers(-1, DAYS), st.integers(-1, DAYS)).map(sorted), min_size=1, max_size=2
)

# What the KPIs and average ticket say, recomputed from `orders` for a period.
ORACLE_UNITS = """
SELECT o.product_id, p.category, sum(o.quantity) AS quantity, sum(o.quantity) * p.price AS sales
FROM orders o JOIN products p USING (product_id)
WHERE o.created_date BETWEEN :start AND :end
GROUP BY o.product_id, p.category, p.price
"""
ORACLE_TOTALS = """
SELECT count(*) AS orders, coalesce(sum(o.quantity * p.price), 0) AS revenue
FROM orders o JOIN products p USING (product_id)
WHERE o.created_date BETWEEN :start AND :end
"""


@pytest.fixture
async def both(
    database_url: URL, tmp_path: Path, clean_db: None
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    kept = create_app(make_settings(database_url, tmp_path / "kept"))
    none = create_app(make_settings(database_url, tmp_path / "none", answer_cache_bytes=0))
    async for a in open_client(kept):
        async for b in open_client(none):
            yield a, b


def day(n: int) -> str:
    return (FIRST + timedelta(n)).isoformat()


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(catalog=products, first=orders, second=orders, spans=periods)
async def test_kept_answers_are_the_answers(
    both: tuple[httpx.AsyncClient, httpx.AsyncClient],
    engine: AsyncEngine,
    catalog: list[tuple[str, str]],
    first: list[tuple[int, int, int]],
    second: list[tuple[int, int, int]],
    spans: list[list[int]],
) -> None:
    kept, none = both
    await empty_data_tables(engine)
    body = "".join(f"{i},P{i},{c},{p}\n" for i, (c, p) in enumerate(catalog, 1))
    assert (await upload(kept, "products", "id,name,category,price\n" + body)).status_code == 201
    for batch, rows in enumerate((first, second)):
        lines = "".join(
            f"{1000 * batch + n},{pid},{q},{day(d)}\n" for n, (pid, q, d) in enumerate(rows, 1)
        )
        # Unknown products are rejected, the rest load: either way a new version.
        response = await upload(kept, "orders", "id,product_id,quantity,created_date\n" + lines)
        assert response.status_code == 201
        for lo, hi in spans:
            query = f"start={day(lo)}&end={day(hi)}"
            for path in (
                f"/kpis?{query}",
                f"/insights/average-ticket?{query}",
                f"/insights/daily-revenue?{query}",
                f"/insights/top-growth?{query}&limit=3",
                f"/insights/top-growth?{query}&basis=previous_sale&limit=3",
                f"/orders?{query}&limit=5",
                f"/kpis?{query}&format=csv",
            ):
                computed, again, plain = (
                    await kept.get(path),
                    await kept.get(path),
                    await none.get(path),
                )
                assert computed.status_code == again.status_code == plain.status_code == 200
                assert computed.content == again.content == plain.content, path
                assert computed.headers["etag"] == again.headers["etag"]
                assert "etag" not in plain.headers
            await assert_period_figures(kept, engine, day(lo), day(hi))


async def assert_period_figures(
    client: httpx.AsyncClient, engine: AsyncEngine, start: str, end: str
) -> None:
    params = {"start": date.fromisoformat(start), "end": date.fromisoformat(end)}
    async with engine.connect() as conn:
        units = (await conn.execute(text(ORACLE_UNITS), params)).all()
        totals = (await conn.execute(text(ORACLE_TOTALS), params)).one()
    kpis = (await client.get(f"/kpis?start={start}&end={end}")).json()
    ticket = (await client.get(f"/insights/average-ticket?start={start}&end={end}")).json()
    assert ticket["orders"] == totals.orders
    assert ticket["revenue_brl"] == f"{totals.revenue:.2f}"
    if not units:
        assert kpis["most_demanded_product"] is None and kpis["top_categories"] == []
        return
    best = min(units, key=lambda r: (-r.quantity, r.product_id))
    product = kpis["most_demanded_product"]
    assert (product["product_id"], product["quantity"]) == (best.product_id, best.quantity)
    assert product["sales_brl"] == f"{best.sales:.2f}"
    by_category: dict[str, int] = {}
    for r in units:
        by_category[r.category] = by_category.get(r.category, 0) + r.quantity
    top = sorted(by_category.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    assert [(c["category"], c["quantity"]) for c in kpis["top_categories"]] == top


# More products a day than leaders kept, so that lists are full and uploads that lower a
# leader's units make the day be ranked again from all its cells.
CROWD = LEADERS_PER_DAY + 15
crowd_orders = st.lists(
    st.tuples(st.integers(1, CROWD), st.integers(1, 30), st.integers(0, 3)),
    min_size=1,
    max_size=120,
)
crowd_steps = st.lists(
    st.tuples(crowd_orders, st.sampled_from(["fresh", "update"])), min_size=1, max_size=4
)


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=crowd_steps, spans=periods, limit=st.integers(1, LEADERS_PER_DAY))
async def test_growth_leaders_stay_exact(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    steps: list[tuple[list[tuple[int, int, int]], str]],
    spans: list[list[int]],
    limit: int,
) -> None:
    await empty_data_tables(engine)
    catalog = "".join(f"{i},P{i},C{i % 3},1.00\n" for i in range(1, CROWD + 1))
    assert (
        await upload(client, "products", "id,name,category,price\n" + catalog)
    ).status_code == 201
    db = Db(engine)
    for n, (rows, how) in enumerate(steps):
        # "update": the same ids as the first step, new values; "fresh": new ids.
        offset = 0 if how == "update" else 1000 * (n + 1)
        lines = "".join(
            f"{offset + i},{pid},{q},{day(d)}\n" for i, (pid, q, d) in enumerate(rows, 1)
        )
        response = await upload(
            client, "orders", "id,product_id,quantity,created_date\n" + lines, on_conflict="update"
        )
        assert response.status_code == 201, response.text
        await db.assert_rollups_exact()
    for lo, hi in spans:
        for basis in ("calendar", "previous_sale"):
            query = f"/insights/top-growth?start={day(lo)}&end={day(hi)}&basis={basis}"
            from_leaders = (await client.get(f"{query}&limit={limit}")).json()["items"]
            # Above LEADERS_PER_DAY every product-day of the period is read.
            from_cells = (await client.get(f"{query}&limit={LEADERS_PER_DAY + 1}")).json()
            assert from_leaders == from_cells["items"][:limit], query


async def test_a_leader_that_falls_back_brings_in_a_cell_never_kept(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    # One day, more products than leaders, each its own units: the list holds the top
    # LEADERS_PER_DAY. The best falls to 1 unit: the next cell, never kept, must enter.
    catalog = "".join(f"{i},P{i},C,1.00\n" for i in range(1, CROWD + 1))
    assert (
        await upload(client, "products", "id,name,category,price\n" + catalog)
    ).status_code == 201
    rows = "".join(f"{i},{i},{i + 1},{day(0)}\n" for i in range(1, CROWD + 1))
    header = "id,product_id,quantity,created_date\n"
    assert (await upload(client, "orders", header + rows)).status_code == 201
    fallen = f"{CROWD},{CROWD},1,{day(0)}\n"
    response = await upload(client, "orders", header + fallen, on_conflict="update")
    assert response.json()["rows_updated"] == 1
    await Db(engine).assert_rollups_exact()


def test_json_answers_are_the_bytes_pydantic_writes() -> None:
    from datetime import UTC, datetime

    from app.analytics.schemas import DailyRevenue, DailyRevenuePage
    from app.fx.schemas import FxInfo
    from app.kit.json import json_answer

    items = [
        DailyRevenue(
            date=date(2024, 5, n),
            orders=n,
            quantity=2 * n,
            revenue_brl="1234.50",
            revenue_usd="228.38",
            revenue_brl_7d_avg="617.25",
        )
        for n in range(1, 4)
    ]
    fx = FxInfo(
        base="BRL", quote="USD", rate="0.184965", mode="latest", source="ecb",
        as_of=date(2024, 5, 3), fetched_at=datetime(2024, 5, 3, 12, 0, 1, 5, tzinfo=UTC),
        stale=False,
    )  # fmt: skip
    page = DailyRevenuePage(items=items, next_cursor="abc", fx=fx)
    answer = json_answer(
        {"items": [vars(i) for i in items], "next_cursor": "abc", "fx": fx.model_dump(mode="json")}
    )
    assert answer.body == page.model_dump_json().encode()
