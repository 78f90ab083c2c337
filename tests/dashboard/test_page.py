"""GET /, its assets and its charts, over the app in process."""

from __future__ import annotations

import re
import tomllib
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from fnmatch import fnmatch
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from app.dashboard import charts
from app.dashboard.router import STATIC_DIR
from tests.helpers import assert_error

ROOT = Path(__file__).resolve().parents[2]
SVG = "{http://www.w3.org/2000/svg}"
TYPES = {
    ".css": ("text/css",),
    ".js": ("text/javascript", "application/javascript"),
    ".svg": ("image/svg+xml",),
}


class PageLinks(HTMLParser):
    """Every URL a page refers to, and what a strict CSP would refuse in it."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href", "action", "srcset", "poster", "data"} and value:
                self.urls.append(value)
            if name.startswith("on") or name == "style":
                self.inline.append(f"<{tag} {name}>")
        self._in_script = tag == "script"
        if tag == "style":
            self.inline.append("<style>")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append("<script> with a body")


async def page_links(client: httpx.AsyncClient) -> PageLinks:
    parser = PageLinks()
    parser.feed((await client.get("/")).text)
    return parser


def svg_tree(response: httpx.Response) -> ET.Element:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/svg+xml"
    return ET.fromstring(response.content)


def drawing(tree: ET.Element, layout: str = "wide") -> ET.Element:
    """One of the chart's two drawings (wide, or narrow for a phone's box)."""
    [found] = [
        e for e in tree.iter(f"{SVG}svg") if f"layout-{layout}" in e.get("class", "").split()
    ]
    return found


def dots(tree: ET.Element, layout: str = "wide") -> int:
    circles = drawing(tree, layout).iter(f"{SVG}circle")
    return sum(1 for c in circles if "dot" in c.get("class", "").split())


def texts(tree: ET.Element, layout: str = "wide") -> list[str]:
    return [t.text or "" for t in drawing(tree, layout).iter(f"{SVG}text")]


def assert_self_contained(tree: ET.Element) -> None:
    """No script, and no attribute or style pointing anywhere: the SVG loads nothing."""
    assert not list(tree.iter(f"{SVG}script"))
    for node in tree.iter():
        for value in node.attrib.values():
            assert "://" not in value and not value.startswith("//"), value
        if node.tag == f"{SVG}style":
            assert "url(" not in (node.text or "") and "@import" not in (node.text or "")


class TestPage:
    async def test_page_is_html_under_a_self_only_policy(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/")
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        for directive in ("script-src", "style-src", "connect-src"):
            assert f"{directive} 'self';" in policy
        # Charts are fetched with the read key and shown from blob: URLs; nothing else.
        assert "img-src 'self' blob:;" in policy
        assert "unsafe" not in policy
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "<h1>" in response.text

    async def test_page_refers_only_to_its_own_origin(self, client: httpx.AsyncClient) -> None:
        links = await page_links(client)
        assert links.urls
        for url in links.urls:
            assert url.startswith(("/", "#")) and not url.startswith("//"), url
        assert "http://" not in (await client.get("/")).text
        assert "https://" not in (await client.get("/")).text

    async def test_page_needs_no_inline_script_or_style(self, client: httpx.AsyncClient) -> None:
        assert (await page_links(client)).inline == []

    async def test_assets_are_served_with_their_types(self, client: httpx.AsyncClient) -> None:
        assets = [u for u in (await page_links(client)).urls if u.startswith("/dashboard/static/")]
        assert {Path(a).suffix for a in assets} == {".css", ".js", ".svg"}
        for asset in assets:
            response = await client.get(asset)
            assert response.status_code == 200, asset
            kind = response.headers["content-type"].split(";")[0]
            assert kind in TYPES[Path(asset).suffix], (asset, kind)
            assert "://" not in response.text.replace("http://www.w3.org/2000/svg", "")

    async def test_every_linked_page_exists(self, client: httpx.AsyncClient) -> None:
        for url in (await page_links(client)).urls:
            if url.startswith("/") and not url.startswith("/dashboard/charts/"):
                assert (await client.get(url)).status_code == 200, url

    async def test_unknown_asset_is_a_404_in_the_error_shape(
        self, client: httpx.AsyncClient
    ) -> None:
        assert_error(await client.get("/dashboard/static/nope.js"), 404, "not_found")

    async def test_page_and_charts_stay_out_of_the_schema(self, client: httpx.AsyncClient) -> None:
        paths = (await client.get("/openapi.json")).json()["paths"]
        assert "/" not in paths
        assert not [p for p in paths if p.startswith("/dashboard")]

    def test_the_build_ships_the_page_and_its_assets(self) -> None:
        config = tomllib.loads((ROOT / "pyproject.toml").read_text())
        patterns = config["tool"]["setuptools"]["package-data"]["app.dashboard"]
        package = STATIC_DIR.parent
        shipped = [
            p.relative_to(package).as_posix()
            for p in package.rglob("*")
            if p.is_file() and p.suffix not in {".py", ".pyc"}
        ]
        assert "index.html" in shipped and "static/dashboard.js" in shipped
        for path in shipped:
            assert any(fnmatch(path, pattern) for pattern in patterns), path


class TestCharts:
    async def test_daily_revenue_has_a_point_per_day(self, reference: httpx.AsyncClient) -> None:
        tree = svg_tree(await reference.get("/dashboard/charts/daily-revenue.svg"))
        assert dots(tree) == 10
        assert dots(tree, "narrow") == 10
        labels = texts(tree)
        assert "2 Dec" in labels and "10 Dec" in labels and "BRL" in labels
        assert "Dec 2024" in labels  # the axis title says the month and year
        assert "7-day average" in labels
        assert "7-day avg." in texts(tree, "narrow")

    async def test_usd_chart_is_in_usd(self, reference: httpx.AsyncClient) -> None:
        response = await reference.get(
            "/dashboard/charts/daily-revenue.svg", params={"currency": "USD"}
        )
        assert "USD" in texts(svg_tree(response))

    async def test_charts_load_nothing(self, reference: httpx.AsyncClient) -> None:
        for path in ("daily-revenue.svg", "top-categories.svg"):
            response = await reference.get(f"/dashboard/charts/{path}")
            assert_self_contained(svg_tree(response))
            assert "script-src" not in response.headers["content-security-policy"]

    async def test_period_filters_the_charts(self, reference: httpx.AsyncClient) -> None:
        params = {"start": "2024-12-05", "end": "2024-12-07"}
        tree = svg_tree(await reference.get("/dashboard/charts/daily-revenue.svg", params=params))
        assert dots(tree) == 3
        assert {"5 Dec", "6 Dec", "7 Dec"} <= set(texts(tree))
        assert "4 Dec" not in texts(tree)

    async def test_top_categories_in_order(self, reference: httpx.AsyncClient) -> None:
        labels = texts(svg_tree(await reference.get("/dashboard/charts/top-categories.svg")))
        # Drawn bottom-up: the first category is the last label.
        names = [t for t in labels if t in {"Shirts", "Jackets", "Pants"}]
        assert names == ["Pants", "Jackets", "Shirts"]
        assert {"50", "30", "29"} <= set(labels)

    async def test_reversed_period_is_the_usual_error(self, reference: httpx.AsyncClient) -> None:
        params = {"start": "2024-12-07", "end": "2024-12-05"}
        response = await reference.get("/dashboard/charts/top-categories.svg", params=params)
        assert_error(response, 422, "invalid_period")

    async def test_empty_database_draws_an_empty_chart(self, client: httpx.AsyncClient) -> None:
        for path in ("daily-revenue.svg", "top-categories.svg"):
            tree = svg_tree(await client.get(f"/dashboard/charts/{path}"))
            assert "No orders" in texts(tree)
            assert "No orders" in texts(tree, "narrow")
            assert dots(tree) == 0


class TestMovingAverage:
    @pytest.mark.parametrize(
        ("values", "expected"),
        [
            ([], []),
            ([7.0], [7.0]),
            ([1.0, 3.0], [1.0, 2.0]),
            ([7.0] * 6 + [14.0, 0.0], [7.0] * 6 + [8.0, 7.0]),
        ],
    )
    def test_mean_of_the_day_and_the_six_before(
        self, values: list[float], expected: list[float]
    ) -> None:
        assert charts.moving_average(values) == pytest.approx(expected)


class TestDateLabels:
    def test_as_many_labels_as_fit_none_on_the_first_day(self) -> None:
        days = [date(2024, 11, 1) + timedelta(days=i) for i in range(30)]
        labels, printed, title = charts.date_labels(days, 510)
        assert len(labels) == 30 and len(set(labels)) == 30
        assert 3 <= len(printed) <= 8
        assert labels[0] not in printed
        assert all(re.fullmatch(r"\d{1,2} Nov", label) for label in printed)
        assert title == "Nov 2024"
        assert len(charts.date_labels(days, 270)[1]) < len(printed)

    def test_a_few_days_are_all_printed(self) -> None:
        days = [date(2024, 12, 5), date(2024, 12, 6), date(2024, 12, 7)]
        assert charts.date_labels(days, 510) == (
            ["5 Dec", "6 Dec", "7 Dec"],
            ["5 Dec", "6 Dec", "7 Dec"],
            "Dec 2024",
        )

    def test_a_long_span_is_labelled_by_month_and_year(self) -> None:
        days = [date(2024, 1, 1) + timedelta(days=i) for i in range(730)]
        labels, printed, title = charts.date_labels(days, 510)
        assert all(re.fullmatch(r"[A-Z][a-z]{2} 20\d\d", label) for label in printed)
        assert title == "Jan 2024 – Dec 2025"
        assert len(set(labels)) == 730

    def test_no_days_no_labels(self) -> None:
        assert charts.date_labels([], 510) == ([], [], "")
