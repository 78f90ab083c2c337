"""Assertions and builders that several test modules share."""

from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import URL

from app.main import create_app
from tests.conftest import API_KEY, make_settings


def app_for(url: URL, tmp_path: Path) -> FastAPI:
    return create_app(make_settings(url, tmp_path))


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


async def upload(
    client: httpx.AsyncClient,
    kind: str,
    content: bytes | str,
    *,
    filename: str = "upload.csv",
    on_conflict: str | None = None,
    api_key: str | None = API_KEY,
) -> httpx.Response:
    """POST a file to /uploads/{kind} as multipart, the way a browser or curl would."""
    data = content.encode() if isinstance(content, str) else content
    params = {"on_conflict": on_conflict} if on_conflict else {}
    headers = {"X-API-Key": api_key} if api_key is not None else {}
    return await client.post(
        f"/uploads/{kind}",
        files={"file": (filename, data, "text/csv")},
        params=params,
        headers=headers,
    )
