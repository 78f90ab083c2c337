"""The dashboard's charts (Apache ECharts, SVG renderer) in a real Chromium at a phone's,
a laptop's and a wide screen's width (390, 1280 and 1920 px), on data made to show what
readers complained of in the pygal charts: 74 categories, some with long names; money in
the tens of millions; a stray order three years before the rest. At each width, every
chart's texts (each `<text>` of its SVG with something in it) never overlap and never
cross the chart's edge; the page breaks no rule of its Content-Security-Policy; the
revenue chart opens on the bulk of the orders and says what it leaves out; the categories
chart shows the top ten and "Other"; tooltips show money exactly."""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import AsyncIterator
from datetime import date, timedelta
from decimal import Decimal

import httpx
import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import URL

from tests.conftest import API_KEY, create_database, drop_database
from tests.dashboard.test_browser import ARTIFACTS, CHROMIUM, Watch
from tests.forecasting.conftest import run_forecast
from tests.helpers import app_for, live_server

WIDTHS = (390, 1280, 1920)
CHARTS = ("chart-brl", "chart-usd", "chart-categories", "chart-forecast")
CATEGORIES = 74
FIRST_DAY = date(2024, 7, 1)
DAYS = 120
STRAY_DAY = date(2021, 3, 2)  # three years and more before the rest
LONG = "Bed, bath and table linen for the whole family"

pytestmark = [
    pytest.mark.one_server,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` (or set CHROMIUM)",
    ),
]


def category_name(i: int) -> str:
    """Every seventh name long (over 50 characters), the others short."""
    return f"{LONG} {i:02}" if i % 7 == 3 else f"Category {i:02}"


def complaint_shop() -> tuple[str, str]:
    """Products (two per category, prices up to R$ 90,000) and 120 days of orders, the
    categories' sales very unequal, plus one order three years before the others:
    daily revenue in the millions, tens of millions over a month."""
    rng = random.Random(29)
    products = ["id,name,category,price"]
    weights = []
    for c in range(1, CATEGORIES + 1):
        for k in range(2):
            pid = 2 * c + k - 1
            price = Decimal(rng.randint(100_000, 9_000_000)) / 100
            products.append(f'{pid},Product {pid},"{category_name(c)}",{price}')
            weights.append(1 / c)  # the first categories sell the most
    ids = list(range(1, 2 * CATEGORIES + 1))
    orders = ["id,product_id,quantity,created_date", f"1,1,1,{STRAY_DAY}"]
    n = 1
    for d in range(DAYS):
        day = FIRST_DAY + timedelta(days=d)
        for pid in rng.choices(ids, weights, k=rng.randint(20, 40)):
            n += 1
            orders.append(f"{n},{pid},{rng.randint(1, 4)},{day}")
    return "\n".join(products) + "\n", "\n".join(orders) + "\n"


@pytest.fixture(scope="module")
async def service(pg_server: URL, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    url = await create_database(pg_server)
    try:
        with live_server(app_for(url, tmp_path_factory.mktemp("charts"))) as base:
            async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": API_KEY}) as http:
                for kind, content in zip(("products", "orders"), complaint_shop(), strict=True):
                    response = await http.post(
                        f"/uploads/{kind}", files={"file": (f"{kind}.csv", content, "text/csv")}
                    )
                    assert response.status_code == 201, response.text
                    assert response.json()["rows_rejected"] == 0, response.text
                state = await run_forecast(http, horizon=14)
                assert state["status"] == "succeeded", state
            yield base
    finally:
        await drop_database(pg_server, url)


# Every CSP violation the page meets, whatever the console says of it.
VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
    window.__violations.push(`${e.violatedDirective}: ${e.blockedURI} ${e.sample}`);
});
"""

# A chart's box and the box of each of its SVG's texts with something in them.
TEXTS = """(id) => {
    const chart = document.getElementById(id);
    const frame = chart.getBoundingClientRect();
    const texts = [...chart.querySelectorAll("svg text")].flatMap((node) => {
        const box = node.getBoundingClientRect();
        const text = node.textContent.trim();
        return text && box.width && box.height
            ? [{text, left: box.left, top: box.top, right: box.right, bottom: box.bottom}]
            : [];
    });
    return {frame: {left: frame.left, top: frame.top, right: frame.right,
                    bottom: frame.bottom}, texts};
}"""


async def open_dashboard(browser: Browser, service: str, width: int) -> tuple[Page, Watch]:
    page = await browser.new_page(viewport={"width": width, "height": 900})
    watch = Watch(origin=service)
    page.on("request", watch.on_request)
    page.on("console", watch.on_console)
    page.on("pageerror", lambda error: watch.errors.append(f"page error: {error}"))
    await page.route("**/*", watch.on_route)
    await page.add_init_script(VIOLATIONS)
    await page.goto(f"{service}/")
    for chart in CHARTS:
        await expect(page.locator(f"#{chart}")).to_have_attribute("data-drawn", re.compile(r"\d"))
    await page.wait_for_load_state("networkidle")
    return page, watch


def overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    """Whether two boxes share more than a hair (half a pixel) of area."""
    slack = 0.5
    return (
        min(a["right"], b["right"]) - max(a["left"], b["left"]) > slack
        and min(a["bottom"], b["bottom"]) - max(a["top"], b["top"]) > slack
    )


async def assert_readable(page: Page, chart: str, label: str) -> list[str]:
    """No two texts of `chart` overlap, none crosses its edge; its texts."""
    drawn = await page.evaluate(TEXTS, chart)
    frame, texts = drawn["frame"], drawn["texts"]
    assert len(texts) >= 4, (label, texts)
    for box in texts:
        inside = (
            box["left"] >= frame["left"] - 0.5
            and box["right"] <= frame["right"] + 0.5
            and box["top"] >= frame["top"] - 0.5
            and box["bottom"] <= frame["bottom"] + 0.5
        )
        assert inside, f"{label}: {box['text']!r} is cut by the chart's edge ({box}, {frame})"
    for a, b in itertools.combinations(texts, 2):
        assert not overlap(a, b), f"{label}: {a['text']!r} overlaps {b['text']!r}"
    return [box["text"] for box in texts]


async def show_view(page: Page, view: str) -> None:
    """Pick a view of the forecast panel; wait until its chart is drawn anew."""
    chart = page.locator("#chart-forecast")
    drawn = await chart.get_attribute("data-drawn")
    await page.locator(f'input[name="forecast-view"][value="{view}"]').check()
    wanted = {
        "total": "/forecasts/total",
        "category": "/forecasts/categories/",
        "product": "/forecasts/products/",
    }[view]
    await expect(chart).to_have_attribute("data-subject", re.compile(re.escape(wanted)))
    await expect(chart).not_to_have_attribute("data-drawn", drawn or "")


async def daily_brl(service: str) -> dict[str, str]:
    """Each day's revenue in BRL as the API writes it (every page)."""
    found: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=service) as http:
        cursor = None
        while True:
            params = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
            answer = (await http.get("/insights/daily-revenue", params=params)).json()
            found.update({i["date"]: i["revenue_brl"] for i in answer["items"]})
            cursor = answer["next_cursor"]
            if not cursor:
                return found


def en_us(day: date) -> str:
    """A date as the page writes it in en-US (the browser's numeric format)."""
    return f"{day:%m/%d/%Y}"


async def assert_tooltip_is_exact(page: Page, service: str) -> None:
    """Point at the BRL chart: the tooltip's revenue is the API's, to the cent."""
    await page.locator("#chart-brl").scroll_into_view_if_needed()
    box = await page.locator("#chart-brl").bounding_box()
    assert box is not None
    for x in (0.55, 0.6):  # two moves: the chart sees the pointer arrive
        await page.mouse.move(box["x"] + box["width"] * x, box["y"] + box["height"] * 0.5)
    tip = page.locator("#chart-brl .chart-tip")
    await expect(tip).to_contain_text("Revenue: R$ ")
    text = " ".join((await tip.text_content() or "").split())
    month, day_, year = re.search(r"(\d\d)/(\d\d)/(\d{4})", text).groups()  # type: ignore[union-attr]
    exact = (await daily_brl(service))[f"{year}-{month}-{day_}"]
    whole, cents = exact.split(".")
    assert f"Revenue: R$ {int(whole):,}.{cents}" in text, (text, exact)
    assert int(whole) >= 1_000_000  # millions a day: the grouping is seen
    await page.mouse.move(0, 0)


@pytest.mark.parametrize("width", WIDTHS)
async def test_every_chart_is_readable_at_this_width(
    chromium: Browser, service: str, width: int
) -> None:
    page, watch = await open_dashboard(chromium, service, width)
    try:
        for chart in CHARTS:
            await assert_readable(page, chart, f"{chart} at {width} px")
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=ARTIFACTS / f"charts-{width}.png", full_page=True)
        # The stray order is outside the first view, which says so and what it shows.
        stray = f"1 day with orders (1 order) before {en_us(FIRST_DAY)}"
        last = FIRST_DAY + timedelta(days=DAYS - 1)
        for chart in ("chart-brl", "chart-usd"):
            await expect(page.locator(f"#{chart}-stray")).to_contain_text(stray)
            await expect(page.locator(f"#{chart}-note")).to_have_text(
                f"Shown: {en_us(FIRST_DAY)} to {en_us(last)}."
            )
        # The top ten categories and the other 64 as one bar.
        bars = await page.evaluate(TEXTS, "chart-categories")
        assert "Other (64 categories)" in [t["text"] for t in bars["texts"]]
        await expect(page.locator("#chart-categories-caption")).to_contain_text(
            "the 10 categories that sold the most, then the other 64 categories together"
        )
        # The forecast's intervals are bands: a stacked area on each low bound.
        stacks = await page.eval_on_selector(
            "#chart-forecast",
            "(el) => echarts.getInstanceByDom(el).getOption().series"
            ".filter((s) => s.stack && s.areaStyle).map((s) => s.stack)",
        )
        assert stacks == ["band95", "band80"]
        await assert_tooltip_is_exact(page, service)
        for view in ("category", "product"):
            await show_view(page, view)
            await assert_readable(page, "chart-forecast", f"the {view} forecast at {width} px")
        assert await page.evaluate("window.__violations") == []
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the page scrolls sideways at {width} px"
        watch.assert_clean()
    finally:
        await page.close()
