"""GET / (the dashboard page). The page reads everything from the JSON API and draws its
charts in the browser with the vendored Apache ECharts (static/echarts.min.js)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
STATIC_URL = "/dashboard/static"

# Same origin only, no inline script or style element: the page can reach nothing but
# this service. ECharts draws its SVG and tooltips by setting `element.style` from script
# (the CSSOM), which `style-src` does not govern; no style attribute or <style> is parsed.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
    " connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

router = APIRouter(include_in_schema=False)


@cache
def _page() -> str:
    return (HERE / "index.html").read_text(encoding="utf-8")


@router.get("/", response_class=HTMLResponse)
async def dashboard() -> HTMLResponse:
    return HTMLResponse(
        _page(),
        headers={
            "Content-Security-Policy": PAGE_CSP,
            "Cache-Control": "no-cache",
            **SECURITY_HEADERS,
        },
    )
