"""ReDoc served wholly by the service. fastapi-offline ships ReDoc's bundle, but the
bundle itself asks a CDN for Redocly's logo (a console error with no internet): this
module serves a copy without that address, and the ReDoc page that loads it."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import HTMLResponse, Response

REDOC_URL = "/redoc"
BUNDLE_URL = "/docs-static/redoc.standalone.js"
BUNDLE = Path(fastapi_offline.__file__).resolve().parent / "static" / "redoc.standalone.js"
FAVICON_URL = "/static-offline-docs/favicon.png"  # fastapi-offline's own static route
CDN_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
# An empty picture in its place: the sidebar keeps its "API docs by Redocly" link.
NO_LOGO = b"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E"

router = APIRouter(include_in_schema=False)


@cache
def bundle() -> bytes:
    """ReDoc's bundle as fastapi-offline ships it, minus the CDN address."""
    return BUNDLE.read_bytes().replace(CDN_LOGO, NO_LOGO)


@router.get(REDOC_URL, response_class=HTMLResponse)
async def redoc(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{root}{BUNDLE_URL}",
        redoc_favicon_url=f"{root}{FAVICON_URL}",
        with_google_fonts=False,
    )


@router.get(BUNDLE_URL)
async def redoc_bundle() -> Response:
    return Response(
        bundle(), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"}
    )
