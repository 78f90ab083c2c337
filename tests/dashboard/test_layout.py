"""The dashboard's layout in a real Chromium, at a desktop's width (1280 px) and a
phone's (390 px): no sideways scroll, a visible cue on the tables that do scroll; the
offline rate's age said in words; the forecast panel. (The charts' texts are checked at
three widths in test_charts.py.) The service runs the sample in data/ (a
month of orders) on the offline ECB rates, with a failed upload of a long-named file in its
history and a forecast run of a week's horizon."""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import URL

from tests.conftest import API_KEY, create_database, drop_database
from tests.dashboard.test_browser import ARTIFACTS, CHROMIUM, Watch
from tests.forecasting.conftest import run_forecast
from tests.helpers import app_for, live_server

ROOT = Path(__file__).resolve().parents[2]
LONG_NAME = "orders-exported-from-the-shop-backoffice-2024-11.csv"
VIEWPORTS = {"desktop": (1280, 900), "phone": (390, 844)}

pytestmark = [
    pytest.mark.one_server,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` (or set CHROMIUM)",
    ),
]


@pytest.fixture(scope="module")
async def service(pg_server: URL, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    url = await create_database(pg_server)
    try:
        with live_server(app_for(url, tmp_path_factory.mktemp("layout"))) as base:
            async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": API_KEY}) as http:
                for kind in ("products", "orders"):
                    content = (ROOT / "data" / f"{kind}.csv").read_bytes()
                    response = await http.post(
                        f"/uploads/{kind}", files={"file": (f"{kind}.csv", content, "text/csv")}
                    )
                    assert response.status_code == 201, response.text
                # A failed upload widens the table: its error code, a long file name.
                bad = b"id,product,qty,date\n1,1,1,2024-11-01\n"
                response = await http.post(
                    "/uploads/orders", files={"file": (LONG_NAME, bad, "text/csv")}
                )
                assert response.status_code == 422, response.text
                rejects = b"id,product_id,quantity,created_date\n90001,999,1,2024-11-02\n"
                response = await http.post(
                    "/uploads/orders", files={"file": ("some-rejects.csv", rejects, "text/csv")}
                )
                assert response.status_code == 201, response.text
                state = await run_forecast(http, horizon=7)
                assert state["status"] == "succeeded", state
            yield base
    finally:
        await drop_database(pg_server, url)


async def open_dashboard(browser: Browser, service: str, viewport: str) -> tuple[Page, Watch]:
    width, height = VIEWPORTS[viewport]
    page = await browser.new_page(viewport={"width": width, "height": height})
    watch = Watch(origin=service)
    page.on("request", watch.on_request)
    page.on("console", watch.on_console)
    await page.route("**/*", watch.on_route)
    await page.goto(f"{service}/")
    await expect(page.locator("#uploads-rows tr")).to_have_count(4)
    await expect(page.locator("#daily-rows tr")).to_have_count(30)
    await page.locator("#daily-details summary").click()  # its table counts too
    await page.locator("#forecast-accuracy summary").click()  # and so does this one
    await expect(page.locator("#chart-forecast")).to_be_visible()
    await page.wait_for_load_state("networkidle")
    return page, watch


SIDEWAYS = """() => {
    const page = document.documentElement;
    return {
        page: page.scrollWidth - page.clientWidth,
        tables: [...document.querySelectorAll('.table-scroll')].map((box) => ({
            id: box.getAttribute('aria-labelledby'),
            overflow: box.scrollWidth - box.clientWidth,
            hint: !box.previousElementSibling.hidden
                && box.previousElementSibling.getBoundingClientRect().height > 0,
        })),
    };
}"""


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
class TestLayout:
    async def test_nothing_scrolls_sideways_but_tables_that_say_so(
        self, chromium: Browser, service: str, viewport: str
    ) -> None:
        page, watch = await open_dashboard(chromium, service, viewport)
        try:
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=ARTIFACTS / f"layout-{viewport}.png", full_page=True)
            measured = await page.evaluate(SIDEWAYS)
            assert measured["page"] <= 0, f"the page scrolls sideways at {viewport} width"
            for table in measured["tables"]:
                if viewport == "desktop":
                    assert table["overflow"] <= 0, f"{table['id']} scrolls sideways"
                else:
                    # A table that scrolls shows its cue, and one that does not, none.
                    assert table["hint"] == (table["overflow"] > 0), table
            if viewport == "phone":
                assert any(t["overflow"] > 0 for t in measured["tables"])
            watch.assert_clean()
        finally:
            await page.close()


async def show_view(page: Page, view: str) -> None:
    """Pick a view of the forecast panel and wait for its chart to be drawn anew."""
    chart = page.locator("#chart-forecast")
    before = await chart.evaluate("(el) => el.dataset.drawn || ''")
    await page.locator(f'input[name="forecast-view"][value="{view}"]').check()
    wanted = {"total": "total", "category": "categories/", "product": "products/"}[view]
    await expect(chart).to_have_attribute("data-subject", re.compile(rf"^/forecasts/{wanted}"))
    await page.wait_for_function(
        "(before) => { const el = document.querySelector('#chart-forecast');"
        " return !el.hidden && el.dataset.drawn !== before; }",
        arg=before,
        timeout=10_000,
    )


async def test_the_offline_rate_says_what_it_is(chromium: Browser, service: str) -> None:
    page, watch = await open_dashboard(chromium, service, "desktop")
    try:
        note = page.locator("#fx-note")
        await expect(note).to_contain_text(
            re.compile(r"ECB reference rate of \d\d/\d\d/\d{4}, the latest the offline data holds")
        )
        text = await note.inner_text()
        assert "days old" not in text and "stale" not in text, text
        watch.assert_clean()
    finally:
        await page.close()


async def test_redoc_asks_nothing_of_another_origin(chromium: Browser, service: str) -> None:
    page = await chromium.new_page()
    watch = Watch(origin=service)
    page.on("request", watch.on_request)
    page.on("console", watch.on_console)
    page.on("pageerror", lambda error: watch.errors.append(f"page error: {error}"))
    await page.route("**/*", watch.on_route)
    try:
        await page.goto(f"{service}/redoc")
        await expect(page.locator("text=API docs by Redocly")).to_be_visible(timeout=30_000)
        await page.wait_for_load_state("networkidle")
        watch.assert_clean()
    finally:
        await page.close()


async def test_the_forecast_panel_opens_on_the_total_and_lists_the_categories(
    chromium: Browser, service: str
) -> None:
    """The total first, its model and reconciliation named in words; the category view
    lists the categories the run forecast and names each one's model."""
    page, watch = await open_dashboard(chromium, service, "desktop")
    try:
        await expect(page.locator('input[name="forecast-view"][value="total"]')).to_be_checked()
        await expect(page.locator("#forecast-product-controls")).to_be_hidden()
        await expect(page.locator("#forecast-category-controls")).to_be_hidden()
        chart = page.locator("#chart-forecast")
        await expect(chart).to_have_attribute("data-subject", "/forecasts/total")
        total = await http_json(service, "/forecasts/total")
        assert "+" in total["model"], total["model"]  # its own model, then reconciled
        model = page.locator("#forecast-model")
        await expect(model).to_contain_text("Model for the whole shop: ")
        await expect(model).to_contain_text("made to agree with the other levels")
        # In words: the model's internal name (AutoETS+BottomUp) is not on screen.
        for name in total["model"].split("+"):
            await expect(model).not_to_contain_text(name)
        await expect(model).to_contain_text(
            re.compile(r"\. \d+ of its products have a forecast of their own\.$")
        )
        # Its backtest in words, from the run's accuracy: served MAE against seasonal naive's.
        rows = (await http_json(service, "/forecasts/accuracy"))["items"]
        served = next(r for r in rows if r["level"] == "total" and r["scope"] == "served")
        naive = next(
            r
            for r in rows
            if r["level"] == "total" and r["model"] == "SeasonalNaive" and r["scope"] == "all"
        )
        # As the page rounds it (JavaScript's Math.round: halves up, not to even).
        gain = math.floor((1 - served["mae"] / naive["mae"]) * 100 + 0.5)
        than = f"{abs(gain)}% {'smaller' if gain > 0 else 'larger'} than" if gain else "as large as"
        await expect(model).to_contain_text(
            f"On the days held back to test it, its errors were {than} seasonal naive's"
        )
        await expect(model).not_to_contain_text("undefined")
        caption = page.locator("#chart-forecast-caption")
        await expect(caption).to_contain_text("dotted: products not yet selling")

        await show_view(page, "category")
        await expect(page.locator("#forecast-category-controls")).to_be_visible()
        exported = await http_text(service, "/exports/predicted_level_demand.csv")
        rows = list(csv.DictReader(io.StringIO(exported)))
        categories = sorted({r["category"] for r in rows if r["level"] == "category"})
        options = page.locator("#forecast-category option")
        await expect(options).to_have_text(categories)
        last = categories[-1]
        await page.locator("#forecast-category").select_option(last)
        await expect(chart).to_have_attribute(
            "data-subject", f"/forecasts/categories/{quote(last, safe='')}"
        )
        answer = await http_json(service, f"/forecasts/categories/{quote(last, safe='')}")
        await expect(model).to_contain_text(f"Model for {last}: ")
        for name in answer["model"].split("+"):
            await expect(model).not_to_contain_text(name)
        watch.assert_clean()
    finally:
        await page.close()


async def test_the_forecast_panel_shows_a_product_its_model_and_the_accuracy(
    chromium: Browser, service: str
) -> None:
    """Pick a product: its chart is drawn and the model is named with its MASE against
    seasonal naive (or why it has none); the accuracy table lists seasonal naive."""
    page, watch = await open_dashboard(chromium, service, "desktop")
    try:
        await show_view(page, "product")
        options = page.locator("#forecast-product option")
        assert await options.count() >= 2
        products = (await http_json(service, "/forecasts/products"))["items"]
        last = products[-1]
        chart = page.locator("#chart-forecast")
        before = await chart.evaluate("(el) => el.dataset.drawn || ''")
        await page.locator("#forecast-product").select_option(str(last["product_id"]))
        await expect(chart).to_have_attribute(
            "data-subject", f"/forecasts/products/{last['product_id']}"
        )
        await expect(chart).to_be_visible()
        await page.wait_for_function(
            "(before) => document.querySelector('#chart-forecast').dataset.drawn !== before",
            arg=before,
            timeout=10_000,
        )
        model = page.locator("#forecast-model")
        if last["model"] == "category_profile":
            await expect(model).to_contain_text("Too little history to test a model")
        elif last["model"] == "SeasonalNaive":
            await expect(model).to_contain_text("no model did better")
        else:
            await expect(model).to_contain_text(
                re.compile(r"errors were \d+% smaller than seasonal naive's|as well as seasonal")
            )
        # Said in words: no model's internal name on screen (issue 29).
        said = await model.text_content() or ""
        for name in ("category_profile", "SeasonalNaive", "AutoETS", "LightGBM", "MASE"):
            assert name not in said, said
        rows = page.locator("#accuracy-rows tr")
        assert await rows.count() >= 2
        await expect(page.locator("#accuracy-rows")).to_contain_text("SeasonalNaive")
        watch.assert_clean()
    finally:
        await page.close()


async def test_the_product_picker_searches_instead_of_listing_everything(
    chromium: Browser, service: str
) -> None:
    """The picker lists the best sellers (50 at most, never the whole catalogue); typing
    in the search box narrows it to the matches, and the chart follows the first."""
    page, watch = await open_dashboard(chromium, service, "desktop")
    try:
        await show_view(page, "product")
        best = (await http_json(service, "/products?limit=50"))["items"]
        options = page.locator("#forecast-product option")
        await expect(options).to_have_count(len(best))
        assert await options.first.get_attribute("value") == str(best[0]["product_id"])
        wanted = best[-1]
        await page.locator("#forecast-search").fill(wanted["name"])
        await expect(options).to_have_count(1)
        assert await options.first.get_attribute("value") == str(wanted["product_id"])
        await expect(page.locator("#chart-forecast")).to_have_attribute(
            "data-subject", f"/forecasts/products/{wanted['product_id']}"
        )
        await page.locator("#forecast-search").fill("no product is called this")
        await expect(options).to_have_count(0)
        await expect(page.locator("#forecast-model")).to_have_text("No product matches.")
        watch.assert_clean()
    finally:
        await page.close()


async def http_json(service: str, path: str) -> Any:
    async with httpx.AsyncClient(base_url=service, headers={"X-API-Key": API_KEY}) as http:
        response = await http.get(path)
        assert response.status_code == 200, response.text
        return response.json()


async def http_text(service: str, path: str) -> str:
    async with httpx.AsyncClient(base_url=service, headers={"X-API-Key": API_KEY}) as http:
        response = await http.get(path)
        assert response.status_code == 200, response.text
        return response.text
