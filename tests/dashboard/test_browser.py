"""The dashboard in a real, headless Chromium, against the real service: uvicorn on
127.0.0.1 on the test PostgreSQL with the reference data, USD from a fake provider at
the assessment's rate. Every request the browser makes is recorded; none may leave
127.0.0.1. Skipped when Chromium is not installed (`apt-get install -y chromium`)."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import (
    BrowserContext,
    ConsoleMessage,
    FilePayload,
    Page,
    Request,
    Route,
    async_playwright,
    expect,
)
from sqlalchemy import URL

from tests.conftest import (
    API_KEY,
    REFERENCE,
    create_database,
    drop_database,
    require_reference,
)
from tests.forecasting.conftest import run_forecast
from tests.fx.fake import ASSESSMENT_RATE, FakeFreeCurrencyApi
from tests.helpers import fx_app, live_server

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
# Without these, Chromium's own background connections fail (and wait) here.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

# The assessment's rate as the page shows it: 4 significant digits in the browser's
# locale (en-US here), the exact one in the element's title.
SHOWN_RATE = "0.1850"

pytestmark = [
    pytest.mark.one_server,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` (or set CHROMIUM)"
        " to run the browser tests",
    ),
]


@pytest.fixture(scope="module")
def provider() -> FakeFreeCurrencyApi:
    """The fake freecurrencyapi behind the service, at the assessment's rate."""
    return FakeFreeCurrencyApi(latest_rate=ASSESSMENT_RATE)


@pytest.fixture(scope="module")
async def service(
    pg_server: URL, tmp_path_factory: pytest.TempPathFactory, provider: FakeFreeCurrencyApi
) -> AsyncIterator[str]:
    """The service's base URL, serving a database of its own with the reference data.
    Rates are never fresh (TTL 0): each answer asks `provider`, so a test can fail it."""
    require_reference()
    url = await create_database(pg_server)
    app = fx_app(url, tmp_path_factory.mktemp("live"), provider, fx_cache_ttl_seconds=0)
    try:
        with live_server(app) as base:
            async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": API_KEY}) as http:
                for kind in ("products", "orders"):
                    content = (REFERENCE / "data" / f"{kind}.csv").read_bytes()
                    response = await http.post(
                        f"/uploads/{kind}", files={"file": (f"{kind}.csv", content, "text/csv")}
                    )
                    assert response.status_code == 201, response.text
            yield base
    finally:
        await drop_database(pg_server, url)


@pytest.fixture(scope="module")
async def browser(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[BrowserContext]:
    """Chromium with a fresh profile; no browser is downloaded, the system's is used."""
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
            locale="en-US",
        )
        yield context
        await context.close()


@dataclass
class Watch:
    """What a page asked for and complained about."""

    origin: str
    requests: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def on_request(self, request: Request) -> None:
        self.requests.append(request.url)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type in {"error", "warning"}:
            self.errors.append(f"console {message.type}: {message.text}")

    async def on_route(self, route: Route) -> None:
        # Anything not for 127.0.0.1 is recorded and never sent.
        if urlsplit(route.request.url).hostname != "127.0.0.1":
            self.outside.append(route.request.url)
            await route.abort()
            return
        await route.continue_()

    def assert_clean(self, *, expected: tuple[str, ...] = ()) -> None:
        """Only this origin was asked; no console error but those `expected`."""
        assert self.requests, "no request was recorded"
        assert self.outside == []
        for url in self.requests:
            parts = urlsplit(url)
            assert f"{parts.scheme}://{parts.netloc}" == self.origin, url
        assert [e for e in self.errors if not any(x in e for x in expected)] == []


@pytest.fixture
async def page(browser: BrowserContext, service: str) -> AsyncIterator[tuple[Page, Watch]]:
    watch = Watch(origin=service)
    page = await browser.new_page()
    page.on("request", watch.on_request)
    page.on("console", watch.on_console)
    page.on("pageerror", lambda error: watch.errors.append(f"page error: {error}"))
    await page.route("**/*", watch.on_route)
    yield page, watch
    await page.close()


async def chart_points(page: Page, selector: str) -> int:
    """Points (or bars) of a chart's first series as ECharts holds them, once drawn."""
    await expect(page.locator(selector)).to_have_attribute("data-drawn", re.compile(r"\d"))
    return int(
        await page.eval_on_selector(
            selector, "(el) => echarts.getInstanceByDom(el).getOption().series[0].data.length"
        )
    )


async def forecast_drawn(page: Page, *, before: str) -> None:
    """The forecast chart drawn anew (its `data-drawn` count moved on from `before`)."""
    await page.wait_for_function(
        "(before) => { const el = document.querySelector('#chart-forecast');"
        " return !el.hidden && el.dataset.drawn && el.dataset.drawn !== before; }",
        arg=before,
        timeout=10_000,
    )


DRAWN = "(el) => el.dataset.drawn || ''"


class TestDashboardInChromium:
    async def test_shows_the_reference_figures_from_this_origin_only(
        self, page: tuple[Page, Watch], service: str
    ) -> None:
        tab, watch = page
        await tab.goto(f"{service}/")
        await expect(tab.locator("#kpi-day")).to_have_text("12/06/2024")
        await expect(tab.locator("#kpi-day-orders")).to_contain_text("10 orders")
        await expect(tab.locator("#kpi-product")).to_have_text("Product_5")
        await expect(tab.locator("#kpi-product-brl")).to_have_text("R$ 891.80")
        await expect(tab.locator("#kpi-product-usd")).to_have_text("US$ 164.95")
        await expect(tab.locator("#kpi-categories li")).to_have_count(3)
        await expect(tab.locator("#kpi-categories li").first).to_contain_text("Shirts")
        await expect(tab.locator("#kpi-ticket-brl")).to_have_text("R$ 154.69")
        await expect(tab.locator("#fx-note")).to_contain_text(f"1 BRL = {SHOWN_RATE} USD")
        await expect(tab.locator("#fx-note span").first).to_have_attribute(
            "title", f"{ASSESSMENT_RATE} exactly"
        )
        await expect(tab.locator("#fx-note")).to_contain_text("freecurrencyapi.com rate of")
        await expect(tab.locator("#fx-note")).not_to_contain_text("stale")
        await expect(tab.locator("#period-status")).to_have_text(
            "All orders: 12/01/2024 to 12/10/2024."
        )
        await expect(tab.locator("#daily-rows tr")).to_have_count(10)
        await expect(tab.locator("#uploads-rows tr")).to_have_count(2)
        await tab.wait_for_load_state("networkidle")
        assert await chart_points(tab, "#chart-brl") == 10
        assert await chart_points(tab, "#chart-usd") == 10
        assert await chart_points(tab, "#chart-categories") == 5  # a bar per category

        ARTIFACTS.mkdir(exist_ok=True)
        await tab.screenshot(path=ARTIFACTS / "dashboard.png", full_page=True)
        await tab.set_viewport_size({"width": 390, "height": 844})
        await tab.screenshot(path=ARTIFACTS / "dashboard-narrow.png", full_page=True)
        overflow = await tab.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, "the page scrolls sideways on a phone"
        watch.assert_clean()

    async def test_numbers_in_the_browsers_locale_and_money_exact(self, service: str) -> None:
        """Money and counts grouped as the reader's locale writes them (pt-BR here), each
        cent as the API wrote it; the rate to 4 significant digits; dates with a year."""
        # (the module's browser is en-US, fixed at its launch: a Chromium of its own)
        async with async_playwright() as playwright:
            chromium = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            try:
                context = await chromium.new_context(locale="pt-BR")
                tab = await context.new_page()
                await tab.goto(f"{service}/")
                await expect(tab.locator("#kpi-product-brl")).to_have_text("R$ 891,80")
                await expect(tab.locator("#kpi-ticket-brl")).to_have_text("R$ 154,69")
                # Dates as this locale writes them, as its date pickers show them.
                await expect(tab.locator("#kpi-day")).to_have_text("06/12/2024")
                async with httpx.AsyncClient() as client:
                    answer = await client.get(f"{service}/insights/average-ticket")
                api = answer.json()
                whole, cents = api["revenue_brl"].split(".")
                grouped = f"{int(whole):,}".replace(",", ".")
                await expect(tab.locator("#kpi-revenue")).to_have_text(f"R$ {grouped},{cents}")
                assert int(whole) >= 1000  # so that the grouping is seen
                await expect(tab.locator("#fx-note")).to_contain_text("1 BRL = 0,1850 USD")
                await expect(tab.locator("#fx-note")).to_contain_text(re.compile(r"20\d\d"))
            finally:
                await chromium.close()

    async def test_the_period_drives_every_panel(
        self, page: tuple[Page, Watch], service: str
    ) -> None:
        tab, watch = page
        await tab.goto(f"{service}/")
        await expect(tab.locator("#kpi-day")).to_have_text("12/06/2024")
        await tab.fill("#start", "2024-12-07")
        await tab.fill("#end", "2024-12-09")
        await tab.click("button[type=submit] >> text=Apply")
        await expect(tab.locator("#period-status")).to_have_text(
            "Orders in the chosen period: 12/07/2024 to 12/09/2024."
        )
        await expect(tab.locator("#daily-rows tr")).to_have_count(3)
        await expect(tab.locator("#kpi-day")).not_to_have_text("12/06/2024")
        assert "start=2024-12-07&end=2024-12-09" in tab.url
        await tab.wait_for_load_state("networkidle")
        asked = [urlsplit(u).query for u in watch.requests if "/insights/top-categories" in u]
        assert asked[-1] == "limit=10&start=2024-12-07&end=2024-12-09"
        assert await chart_points(tab, "#chart-brl") == 3
        href = await tab.get_attribute("#dl-orders", "href")
        assert href == "/orders?format=csv&start=2024-12-07&end=2024-12-09"

        # A reload keeps the period; "All dates" clears it.
        await tab.reload()
        await expect(tab.locator("#start")).to_have_value("2024-12-07")
        await expect(tab.locator("#daily-rows tr")).to_have_count(3)
        await tab.click("#period-reset")
        await expect(tab.locator("#daily-rows tr")).to_have_count(10)
        await expect(tab.locator("#kpi-day")).to_have_text("12/06/2024")
        watch.assert_clean()

    async def test_a_period_too_long_to_read_whole_says_what_is_drawn(
        self, page: tuple[Page, Watch], service: str
    ) -> None:
        """The page reads at most 20 pages of daily revenue: past them (here every page
        says there is another: its cursor kept back from the service, which is asked
        for the first page each time), the charts and the table say what they show."""
        tab, watch = page

        async def endless(route: Route) -> None:
            url = urlsplit(route.request.url)
            query = "&".join(p for p in url.query.split("&") if not p.startswith("cursor="))
            response = await route.fetch(url=url._replace(query=query).geturl())
            body = await response.json()
            await route.fulfill(response=response, json={**body, "next_cursor": "more"})

        await tab.route("**/insights/daily-revenue?*", endless)
        await tab.goto(f"{service}/")
        days = 20 * 10  # the reference data's 10 days, read 20 times
        await expect(tab.locator("#chart-brl-stray")).to_have_text(
            f"Only the period's first {days} days are drawn; the CSV has them all."
        )
        await expect(tab.locator("#daily-rows")).to_contain_text(
            f"The first {days} days of the period; the CSV has them all."
        )
        watch.assert_clean()

    async def test_upload_form_shows_the_report(
        self, page: tuple[Page, Watch], service: str
    ) -> None:
        tab, watch = page
        await tab.goto(f"{service}/")
        await expect(tab.locator("#uploads-rows tr")).to_have_count(2)
        products = REFERENCE / "data" / "products.csv"

        await tab.set_input_files("#upload-file", str(products))
        drawn = {
            c: await tab.eval_on_selector(c, DRAWN) for c in ("#chart-brl", "#chart-categories")
        }
        await tab.fill("#upload-key", "not-the-key")
        await tab.click("#upload-submit")
        await expect(tab.locator("#upload-error")).to_contain_text("unauthorized")

        # The same products again: every row unchanged, nothing rejected.
        await tab.fill("#upload-key", API_KEY)
        await tab.click("#upload-submit")
        report = tab.locator("#upload-report")
        await expect(report).to_be_visible()
        await expect(tab.locator("#upload-error")).to_be_hidden()
        await expect(tab.locator("#upload-phase")).to_have_text("Done")
        await expect(report).to_contain_text("succeeded")
        fields = tab.locator("#upload-report-fields")
        await expect(fields.locator("dt")).to_contain_text(["Rows read", "Inserted", "Unchanged"])
        await expect(fields.locator("dt:text('Unchanged') + dd")).to_have_text("20")
        await expect(fields.locator("dt:text('Rejected') + dd")).to_have_text("0")
        await expect(tab.locator("#upload-report-warning")).to_be_hidden()
        await expect(tab.locator("#uploads-rows tr")).to_have_count(3)
        await expect(tab.locator("#uploads-rows tr").first).to_contain_text("products.csv")
        # The figures are read again, the charts drawn anew.
        for chart in ("#chart-brl", "#chart-categories"):
            await expect(tab.locator(chart)).not_to_have_attribute("data-drawn", drawn[chart])
        await expect(tab.locator("#kpi-product")).to_have_text("Product_5")
        # The browser logs the refused upload itself.
        watch.assert_clean(expected=("status of 401 (Unauthorized)",))

    async def test_rejected_rows_link_to_their_csv(
        self, page: tuple[Page, Watch], service: str
    ) -> None:
        tab, watch = page
        await tab.goto(f"{service}/")
        await tab.check("input[name=kind][value=orders]")
        await tab.set_input_files(
            "#upload-file",
            files=FilePayload(
                name="bad-orders.csv",
                mimeType="text/csv",
                buffer=b"id,product_id,quantity,created_date\n9001,999,1,2024-12-01\n",
            ),
        )
        await tab.fill("#upload-key", API_KEY)
        await tab.click("#upload-submit")
        await expect(tab.locator("#upload-report")).to_contain_text("unknown_product: 1")
        # Every row rejected: said above the figures, as an alert (issue 27).
        warning = tab.locator("#upload-report-warning")
        await expect(warning).to_be_visible()
        await expect(warning).to_have_attribute("role", "alert")
        await expect(warning).to_contain_text("Every row was rejected (1), most as unknown_product")
        fields = tab.locator("#upload-report-fields")
        await expect(fields.locator("dt:text-is('Rejected') + dd")).to_have_text("1 (100.0%)")
        link = tab.locator("#upload-report a")
        href = await link.get_attribute("href")
        assert href is not None and href.endswith("/rejects?format=csv")
        first = tab.locator("#uploads-rows tr").first
        await expect(first).to_contain_text("bad-orders.csv")
        await expect(first.locator("a")).to_have_attribute("href", href)
        body = (await tab.request.get(f"{service}{href}")).text()
        assert "unknown_product" in await body
        watch.assert_clean()

    async def test_the_forecast_shows_the_total_then_a_category(
        self, page: tuple[Page, Watch], service: str
    ) -> None:
        """After a forecast run the panel opens on the whole shop's chart; choosing a
        category draws that category's. Ten days of orders are too few to backtest a
        level: each is its products' sum, and the caption says so."""
        async with httpx.AsyncClient(base_url=service, headers={"X-API-Key": API_KEY}) as http:
            assert (await run_forecast(http, horizon=7))["status"] == "succeeded"
        tab, watch = page
        await tab.goto(f"{service}/")
        chart = tab.locator("#chart-forecast")
        model = tab.locator("#forecast-model")
        await expect(chart).to_have_attribute("data-subject", re.compile(r"^/forecasts/total$"))
        await expect(model).to_contain_text("Model for the whole shop: the sum of its products'")
        await expect(tab.locator("#forecast-product-controls")).to_be_hidden()
        await forecast_drawn(tab, before="")

        before = await chart.evaluate(DRAWN)
        await tab.get_by_label("A category").check()
        await expect(tab.locator("#forecast-category-controls")).to_be_visible()
        # The reference categories, by name; the first is shown at once.
        options = tab.locator("#forecast-category option")
        await expect(options).to_have_text(["Dresses", "Jackets", "Pants", "Shirts", "Shoes"])
        await expect(chart).to_have_attribute(
            "data-subject", re.compile(r"^/forecasts/categories/Dresses$")
        )
        await forecast_drawn(tab, before=before)
        before = await chart.evaluate(DRAWN)
        await tab.locator("#forecast-category").select_option("Shirts")
        await expect(chart).to_have_attribute(
            "data-subject", re.compile(r"^/forecasts/categories/Shirts$")
        )
        await expect(model).to_contain_text("Model for Shirts: the sum of its products'")
        await forecast_drawn(tab, before=before)
        # A summed level has no part beyond its products: no dotted line is named.
        await expect(tab.locator("#chart-forecast-caption")).not_to_contain_text("dotted")

        # Back to the total: drawn again.
        before = await chart.evaluate(DRAWN)
        await tab.get_by_label("Total").check()
        await expect(chart).to_have_attribute("data-subject", re.compile(r"^/forecasts/total$"))
        await forecast_drawn(tab, before=before)
        ARTIFACTS.mkdir(exist_ok=True)
        await tab.locator("#forecast").screenshot(path=ARTIFACTS / "forecast-total.png")
        watch.assert_clean()

    async def test_a_stale_rate_says_so(
        self, page: tuple[Page, Watch], service: str, provider: FakeFreeCurrencyApi
    ) -> None:
        """Last of the module: the service then leaves the failed provider alone for 30 s."""
        tab, watch = page
        provider.mode = "fail401"
        try:
            await tab.goto(f"{service}/")
            note = tab.locator("#fx-note")
            await expect(note).to_contain_text("could not be reached")
            await expect(note).to_contain_text(f"1 BRL = {SHOWN_RATE} USD")
            await expect(note.locator(".badge")).to_have_text("stale")
            await expect(note).to_have_class(re.compile(r"\bstale\b"))
            await expect(tab.locator("#kpi-product-usd")).to_have_text("US$ 164.95")
            ARTIFACTS.mkdir(exist_ok=True)
            await note.screenshot(path=ARTIFACTS / "fx-stale.png")
        finally:
            provider.mode = "ok"
        watch.assert_clean()


READ_KEY = "dashboard-read-key"


@pytest.fixture(scope="module")
async def keyed_service(
    pg_server: URL, tmp_path_factory: pytest.TempPathFactory, provider: FakeFreeCurrencyApi
) -> AsyncIterator[str]:
    """The service with READ_ACCESS=key (one read key), on the reference data."""
    require_reference()
    url = await create_database(pg_server)
    app = fx_app(
        url,
        tmp_path_factory.mktemp("live-keyed"),
        provider,
        read_access="key",
        read_api_keys=READ_KEY,
    )
    try:
        with live_server(app) as base:
            async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": API_KEY}) as http:
                for kind in ("products", "orders"):
                    content = (REFERENCE / "data" / f"{kind}.csv").read_bytes()
                    response = await http.post(
                        f"/uploads/{kind}", files={"file": (f"{kind}.csv", content, "text/csv")}
                    )
                    assert response.status_code == 201, response.text
            yield base
    finally:
        await drop_database(pg_server, url)


@pytest.fixture
async def keyed_page(
    browser: BrowserContext, keyed_service: str
) -> AsyncIterator[tuple[Page, Watch, list[tuple[str, str | None]]]]:
    """A new tab (so an empty sessionStorage) on the keyed service; also every request's
    URL with the X-API-Key it carried."""
    watch = Watch(origin=keyed_service)
    sent: list[tuple[str, str | None]] = []
    page = await browser.new_page()
    page.on("request", watch.on_request)
    page.on("request", lambda r: sent.append((r.url, r.headers.get("x-api-key"))))
    page.on("console", watch.on_console)
    page.on("pageerror", lambda error: watch.errors.append(f"page error: {error}"))
    await page.route("**/*", watch.on_route)
    yield page, watch, sent
    await page.close()


class TestDashboardWithReadKeys:
    async def test_asks_for_the_key_once_and_keeps_it_out_of_urls(
        self, keyed_page: tuple[Page, Watch, list[tuple[str, str | None]]], keyed_service: str
    ) -> None:
        tab, watch, sent = keyed_page
        await tab.goto(f"{keyed_service}/")
        dialog = tab.locator("#key-dialog")
        await expect(dialog).to_be_visible()
        await tab.fill("#key-input", "not-the-read-key")
        await tab.click("#key-submit")
        # A refused key: asked again, saying so.
        await expect(tab.locator("#key-dialog-error")).to_contain_text("refused")
        await tab.fill("#key-input", READ_KEY)
        await tab.click("#key-submit")
        await expect(tab.locator("#kpi-day")).to_have_text("12/06/2024")
        await expect(tab.locator("#kpi-product-usd")).to_have_text("US$ 164.95")
        await expect(tab.locator("#daily-rows tr")).to_have_count(10)
        await expect(tab.locator("#uploads-rows tr")).to_have_count(2)
        await expect(dialog).to_be_hidden()
        await tab.wait_for_load_state("networkidle")
        assert await chart_points(tab, "#chart-brl") == 10
        assert await chart_points(tab, "#chart-usd") == 10
        stored = await tab.evaluate("sessionStorage.getItem('orderlens.apiKey')")
        assert stored == READ_KEY

        # The tab keeps its key: a reload asks nothing.
        await tab.reload()
        await expect(tab.locator("#kpi-day")).to_have_text("12/06/2024")
        await tab.wait_for_load_state("networkidle")
        await expect(tab.locator("#key-dialog")).to_have_count(0)
        assert await chart_points(tab, "#chart-categories") == 5  # a bar per category

        # A CSV download is fetched with the key and saved from a blob: URL.
        async with tab.expect_download() as info:
            await tab.click("#dl-kpi-file")
        download = await info.value
        assert download.url.startswith("blob:")
        assert download.suggested_filename == "kpi_product_orders.csv"
        saved = await asyncio.to_thread(Path(await download.path()).read_text)
        assert saved.startswith("kpi_name,value")

        data_reads = [key for url, key in sent if urlsplit(url).path == "/kpis"]
        assert data_reads and data_reads[-1] == READ_KEY
        exports = [key for url, key in sent if urlsplit(url).path.startswith("/exports/")]
        assert exports == [READ_KEY]
        for url, _ in sent:
            assert READ_KEY not in url and "not-the-read-key" not in url, url
        assert READ_KEY not in tab.url
        watch.requests = [u for u in watch.requests if not u.startswith("blob:")]
        # The browser logs the 401 answers that made the page ask.
        watch.assert_clean(expected=("status of 401 (Unauthorized)",))

    async def test_a_declined_prompt_says_a_key_is_needed(
        self, keyed_page: tuple[Page, Watch, list[tuple[str, str | None]]], keyed_service: str
    ) -> None:
        tab, watch, sent = keyed_page
        await tab.goto(f"{keyed_service}/")
        await expect(tab.locator("#key-dialog")).to_be_visible()
        await tab.click("#key-cancel")
        await expect(tab.locator("#kpi-error")).to_contain_text("unauthorized")
        await expect(tab.locator("#key-dialog")).to_be_hidden()
        assert all(key is None for _, key in sent)
        watch.assert_clean(expected=("status of 401 (Unauthorized)",))


def coded_shop() -> tuple[str, str]:
    """Products with text ids (issue 27, item 4): the best seller a SKU code, one code
    with a space (encoded in every URL), one integer id; ten days of their orders."""
    products = (
        "id,name,category,price\n"
        "85123A,White hanging heart,Decor,2.55\n"
        "71053,White metal lantern,Decor,3.39\n"
        "BANK CHARGES,Bank charges,Fees,1.00\n"
    )
    lines = ["id,product_id,quantity,created_date"]
    for day in range(1, 11):
        lines += [f"H-{day},85123A,5,2024-12-{day:02}", f"{day},71053,1,2024-12-{day:02}"]
        if day % 3 == 0:
            lines.append(f"B-{day},BANK CHARGES,2,2024-12-{day:02}")
    return products, "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
async def coded_service(
    pg_server: URL, tmp_path_factory: pytest.TempPathFactory, provider: FakeFreeCurrencyApi
) -> AsyncIterator[str]:
    """The service on `coded_shop` (uploaded with `?ids=text`), after a forecast run."""
    url = await create_database(pg_server)
    app = fx_app(url, tmp_path_factory.mktemp("live-coded"), provider)
    try:
        with live_server(app) as base:
            async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": API_KEY}) as http:
                for kind, content in zip(("products", "orders"), coded_shop(), strict=True):
                    response = await http.post(
                        f"/uploads/{kind}",
                        params={"ids": "text"},
                        files={"file": (f"{kind}.csv", content, "text/csv")},
                    )
                    assert response.status_code == 201, response.text
                    assert response.json()["rows_rejected"] == 0, response.text
                assert (await run_forecast(http, horizon=7))["status"] == "succeeded"
            yield base
    finally:
        await drop_database(pg_server, url)


class TestDashboardWithTextIds:
    async def test_products_with_codes_are_picked_and_drawn(
        self, browser: BrowserContext, coded_service: str
    ) -> None:
        """The picker holds each product by its id as written; choosing one draws its
        chart, its id encoded in the chart's address and in the forecast's read."""
        watch = Watch(origin=coded_service)
        tab = await browser.new_page()
        tab.on("request", watch.on_request)
        tab.on("console", watch.on_console)
        tab.on("pageerror", lambda error: watch.errors.append(f"page error: {error}"))
        await tab.route("**/*", watch.on_route)
        try:
            await tab.goto(f"{coded_service}/")
            await expect(tab.locator("#kpi-product")).to_have_text("White hanging heart")
            await expect(tab.locator("#kpi-product-units")).to_have_text("#85123A · 50 units")
            chart = tab.locator("#chart-forecast")
            model = tab.locator("#forecast-model")
            await expect(chart).to_have_attribute("data-subject", re.compile(r"^/forecasts/total$"))
            await forecast_drawn(tab, before="")

            before = await chart.evaluate(DRAWN)
            await tab.get_by_role("radio", name="A product").check()
            picker = tab.locator("#forecast-product option")
            # Best sellers first, each by its id as written.
            await expect(picker).to_have_count(3)
            values = await picker.evaluate_all("(os) => os.map((o) => o.value)")
            assert values == ["85123A", "71053", "BANK CHARGES"]
            await expect(chart).to_have_attribute(
                "data-subject", re.compile(r"^/forecasts/products/85123A$")
            )
            await expect(model).to_contain_text("Too little history to test a model")
            await forecast_drawn(tab, before=before)

            before = await chart.evaluate(DRAWN)
            await tab.locator("#forecast-product").select_option("BANK CHARGES")
            await expect(chart).to_have_attribute(
                "data-subject", re.compile(r"^/forecasts/products/BANK%20CHARGES$")
            )
            await expect(model).to_contain_text("Too little history to test a model")
            await forecast_drawn(tab, before=before)

            # Found by its integer id; its chart asked by the integer.
            before = await chart.evaluate(DRAWN)
            await tab.fill("#forecast-search", "71053")
            await expect(picker).to_have_count(1)
            await expect(chart).to_have_attribute(
                "data-subject", re.compile(r"^/forecasts/products/71053$")
            )
            await forecast_drawn(tab, before=before)
            await expect(model).to_contain_text("Too little history to test a model")

            reads = [urlsplit(u).path for u in watch.requests]
            assert "/forecasts/products/BANK%20CHARGES" in reads
            assert "/forecasts/products/85123A" in reads
            assert "/forecasts/products/71053" in reads
            ARTIFACTS.mkdir(exist_ok=True)
            await tab.locator("#forecast").screenshot(path=ARTIFACTS / "forecast-coded.png")
            watch.requests = [u for u in watch.requests if not u.startswith("blob:")]
            watch.assert_clean()
        finally:
            await tab.close()
