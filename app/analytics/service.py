"""KPIs and insights from the rollups, with every USD figure from one stated conversion."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.analytics import queries, rollups
from app.analytics.schemas import (
    AverageTicket,
    CategoryUnits,
    DailyRevenue,
    Growth,
    Kpis,
    MaxOrderDate,
    MostDemandedProduct,
    OtherCategories,
    PeriodOut,
    TopCategories,
)
from app.config import FxMode
from app.fx.service import Conversion, FxService
from app.kit.money import money
from app.kit.params import Period


class GrowthBasis(StrEnum):
    CALENDAR = "calendar"
    PREVIOUS_SALE = "previous_sale"


async def _rows(session: AsyncSession, sql: str, **params: Any) -> list[Any]:
    return list((await session.execute(text(sql), params)).all())


async def _days(session: AsyncSession, period: Period) -> list[date]:
    return [r.created_date for r in await _rows(session, queries.ORDER_DAYS, **period.params())]


@dataclass(frozen=True)
class UsdQuery:
    """A question about the orders in BRL and USD: the session it reads in, the FX
    service and mode that convert, the days it covers."""

    session: AsyncSession
    fx: FxService
    mode: FxMode
    period: Period


async def conversion(q: UsdQuery) -> Conversion:
    """The rate(s) for a streamed answer about `q.period` (order_date: every order day in
    it; a day that lands meanwhile gets an empty USD cell, see orders.queries)."""
    days = await _days(q.session, q.period) if q.mode is FxMode.ORDER_DATE else []
    return await q.fx.conversion(q.mode, days)


async def _in_usd(
    q: UsdQuery, brl: Decimal, days_sql: str, **params: Any
) -> tuple[Decimal, Conversion]:
    """`brl` in USD and the conversion that made it: at the one rate of `latest`, or as
    each day's revenue (`days_sql`'s rows) at its day's rate."""
    if q.mode is FxMode.LATEST:
        conv = await q.fx.conversion(q.mode)
        return brl * conv.rate_on(), conv
    days = await _rows(q.session, days_sql, **params)
    conv = await q.fx.conversion(q.mode, [d.created_date for d in days])
    return sum((d.revenue_brl * conv.rate_on(d.created_date) for d in days), Decimal(0)), conv


async def period_out(*, session: AsyncSession, period: Period) -> PeriodOut:
    [row] = await _rows(session, queries.PERIOD, **period.params())
    return PeriodOut(start=row.first, end=row.last)


async def kpis(q: UsdQuery) -> Kpis:
    session, period = q.session, q.period
    params = period.params()
    top_day = await _rows(session, queries.MAX_ORDER_DATE, **params)
    figures = await _rows(session, queries.PRODUCT_FIGURES[period.unbounded], **params)
    demanded = [r for r in figures if r.figure == "product"]
    product: MostDemandedProduct | None = None
    info = None
    if demanded:
        row = demanded[0]
        usd, conv = await _in_usd(
            q, row.sales_brl, queries.PRODUCT_DAYS, product_id=row.product_id, **params
        )
        product = MostDemandedProduct(
            product_id=row.code or row.product_id,
            product_name=row.name,
            quantity=row.quantity,
            sales_brl=money(row.sales_brl) or "0.00",
            sales_usd=money(usd) or "0.00",
        )
        info = conv.info()
    return Kpis(
        max_order_date=MaxOrderDate(date=top_day[0].created_date, orders=top_day[0].orders)
        if top_day
        else None,
        most_demanded_product=product,
        top_categories=[
            CategoryUnits(category=r.category, quantity=r.quantity)
            for r in figures
            if r.figure == "category"
        ],
        fx=info,
        period=await period_out(session=session, period=period),
    )


async def top_categories(*, session: AsyncSession, period: Period, limit: int) -> TopCategories:
    """The `limit` categories with the most units in `period` (ties: name ascending) and
    the others' units summed."""
    rows = await _rows(
        session, queries.CATEGORY_UNITS[period.unbounded], limit=limit, **period.params()
    )
    rest = [r for r in rows if r.category is None]
    return TopCategories(
        items=[
            CategoryUnits(category=r.category, quantity=r.quantity)
            for r in rows
            if r.category is not None
        ],
        other=OtherCategories(categories=rest[0].categories, quantity=rest[0].quantity)
        if rest
        else None,
    )


@dataclass
class DailyRevenueRows:
    items: list[DailyRevenue]
    conversion: Conversion | None


async def daily_revenue(q: UsdQuery, *, after: date | None, limit: int | None) -> DailyRevenueRows:
    rows = await _rows(
        q.session,
        queries.DAILY_REVENUE,
        after=after.isoformat() if after else None,
        limit=limit,
        **q.period.params(),
    )
    if not rows:
        return DailyRevenueRows([], None)
    conv = await q.fx.conversion(q.mode, [r.day for r in rows if r.orders])
    items = [
        DailyRevenue(
            date=r.day,
            orders=r.orders,
            quantity=r.quantity,
            revenue_brl=money(r.revenue_brl) or "0.00",
            revenue_usd=money(r.revenue_brl * _day_rate(conv, r.day, r.orders)) or "0.00",
            revenue_brl_7d_avg=money(r.revenue_brl_7d_avg) or "0.00",
        )
        for r in rows
    ]
    return DailyRevenueRows(items, conv)


DAILY_CSV_PAGE = 10_000  # days per query of a streamed daily revenue CSV


async def daily_revenue_conversion(q: UsdQuery) -> Conversion | None:
    """The conversion of a whole daily revenue series; None when the period has no orders
    (then no rate is needed)."""
    days = await _days(q.session, q.period)
    if not days:
        return None
    return await q.fx.conversion(q.mode, days if q.mode is FxMode.ORDER_DATE else [])


async def daily_revenue_pages(
    *, sessionmaker: async_sessionmaker[AsyncSession], conv: Conversion | None, period: Period
) -> AsyncIterator[list[tuple[Any, ...]]]:
    """Every day of the series as CSV cells, a page of days at a time, from one snapshot:
    memory stays flat however many days the orders span (0001-01-01 to 9999-12-31 is
    3.65 million). A day with orders that landed after `conv` was made has no USD cell."""
    if conv is None:
        return
    async with sessionmaker() as session:
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        after: date | None = None
        while True:
            rows = await _rows(
                session,
                queries.DAILY_REVENUE,
                after=after.isoformat() if after else None,
                limit=DAILY_CSV_PAGE,
                **period.params(),
            )
            if not rows:
                return
            yield [
                (
                    r.day,
                    r.orders,
                    r.quantity,
                    money(r.revenue_brl) or "0.00",
                    _usd_cell(conv, r.day, r.orders, r.revenue_brl),
                    money(r.revenue_brl_7d_avg) or "0.00",
                )
                for r in rows
            ]
            if len(rows) < DAILY_CSV_PAGE:
                return
            after = rows[-1].day


def _usd_cell(conv: Conversion, day: date, orders: int, revenue_brl: Decimal) -> str:
    if conv.latest is None and orders and day not in conv.by_day:
        return ""
    return money(revenue_brl * _day_rate(conv, day, orders)) or "0.00"


def _day_rate(conv: Conversion, day: date, orders: int) -> Decimal:
    # A zero-filled day has no orders, hence no rate of its own in order_date mode.
    if conv.latest is None and orders == 0:
        return Decimal(0)
    return conv.rate_on(day)


async def average_ticket(q: UsdQuery) -> AverageTicket:
    [totals] = await _rows(q.session, queries.TOTALS, **q.period.params())
    orders, revenue = totals.orders, totals.revenue_brl
    average_brl = average_usd = None
    info = None
    if orders:
        usd, conv = await _in_usd(q, revenue, queries.REVENUE_DAYS, **q.period.params())
        average_brl, average_usd = money(revenue / orders), money(usd / orders)
        info = conv.info()
    return AverageTicket(
        orders=orders,
        revenue_brl=money(revenue) or "0.00",
        average_ticket_brl=average_brl,
        average_ticket_usd=average_usd,
        fx=info,
        period=await period_out(session=q.session, period=q.period),
    )


def _growth(row: Any) -> Growth:
    """A growth row, its product's id as the file wrote it (a code, else the integer)."""
    values = dict(row._mapping)
    code = values.pop("product_code")
    return Growth(**{**values, "product_id": code or values["product_id"]})


async def top_growth(
    *, session: AsyncSession, period: Period, basis: GrowthBasis, limit: int
) -> list[Growth]:
    params = {**period.params(), "limit": limit}
    leaders = limit <= rollups.LEADERS_PER_DAY
    if basis is GrowthBasis.PREVIOUS_SALE:
        if leaders:
            rows = await _rows(session, queries.TOP_GROWTH_PREVIOUS_SALE_LEADERS, **params)
            last = rows[-1] if len(rows) == limit else None
            [(cut,)] = await _rows(
                session,
                queries.LEADERS_CUT,
                per_day=rollups.LEADERS_PER_DAY,
                start=params["start"],
                end=params["end"],
                growth=last.growth if last else None,
                date=last.date if last else None,
                product_id=last.product_id if last else None,
            )
            if not cut:
                return [_growth(r) for r in rows]
        rows = await _rows(session, queries.TOP_GROWTH_PREVIOUS_SALE, **params)
        return [_growth(r) for r in rows]
    [(lo,)] = await _rows(session, queries.FIRST_ORDER_DATE, start=params["start"])
    if lo is None:
        return []
    kept = queries.TOP_GROWTH_CALENDAR_LEADERS if leaders else queries.TOP_GROWTH_CALENDAR_KEPT
    rows = await _rows(session, kept, **params)
    if len(rows) < limit or rows[-1].growth < 0:
        # Days after a sale day have no row but grow by minus its units: when such
        # growths can rank, ask the exact query.
        rows = await _rows(session, queries.TOP_GROWTH_CALENDAR, **params)
    return [_growth(r) for r in rows]
