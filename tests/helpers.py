"""Assertions and builders that several test modules share."""

from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import URL

from app.main import create_app
from tests.conftest import make_settings


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
