"""GET / and its assets (the vendored ECharts among them), over the app in process."""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch
from html.parser import HTMLParser
from pathlib import Path

import httpx

from app.dashboard.router import STATIC_DIR
from tests.helpers import assert_error

ROOT = Path(__file__).resolve().parents[2]
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


# The only addresses the scripts may hold: XML namespaces (ECharts writes SVG), the
# licences named in ECharts's header, and ECharts's own schemes for symbols drawn from
# a path or an image given in a chart's options (the page gives none); none is fetched.
NAMESPACES = re.compile(
    r"(image|path)://"
    r"|http://www\.w3\.org/(2000/svg|1999/xlink|2000/xmlns/|XML/1998/namespace)"
    r"|http://www\.apache\.org/licenses/LICENSE-2\.0"
    r"|https://github\.com/ecomfe/zrender/blob/master/LICENSE"
)


class TestPage:
    async def test_page_is_html_under_a_self_only_policy(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/")
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        for directive in ("script-src", "style-src", "connect-src"):
            assert f"{directive} 'self';" in policy
        # The charts are drawn by the page's own script: no other source, nothing unsafe.
        assert "img-src 'self';" in policy
        assert "unsafe" not in policy and "blob:" not in policy
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
            assert "://" not in NAMESPACES.sub("", response.text), asset

    async def test_every_linked_page_exists(self, client: httpx.AsyncClient) -> None:
        for url in (await page_links(client)).urls:
            if url.startswith("/"):
                assert (await client.get(url)).status_code == 200, url

    async def test_unknown_asset_is_a_404_in_the_error_shape(
        self, client: httpx.AsyncClient
    ) -> None:
        assert_error(await client.get("/dashboard/static/nope.js"), 404, "not_found")

    async def test_page_stays_out_of_the_schema(self, client: httpx.AsyncClient) -> None:
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


class TestVendoredECharts:
    async def test_the_page_loads_echarts_before_its_script(
        self, client: httpx.AsyncClient
    ) -> None:
        scripts = [u for u in (await page_links(client)).urls if u.endswith(".js")]
        assert scripts == ["/dashboard/static/echarts.min.js", "/dashboard/static/dashboard.js"]

    def test_the_copy_is_the_version_it_says_with_its_licence(self) -> None:
        version = (STATIC_DIR / "echarts.VERSION").read_text().strip()
        assert re.fullmatch(r"[56]\.\d+\.\d+", version)
        bundle = (STATIC_DIR / "echarts.min.js").read_text(encoding="utf-8")
        assert f't.version="{version}"' in bundle
        licence = (STATIC_DIR / "echarts.LICENSE.txt").read_text()
        assert "Apache License" in licence and "Version 2.0" in licence
        # The script that refreshes it is documented where the dashboard is.
        assert "app.dashboard.vendor_echarts" in (ROOT / "docs" / "ARCHITECTURE.md").read_text()
