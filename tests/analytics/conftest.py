"""Read-API fixtures: the service with the reference data loaded through the API, and a
fake FX provider at the rate the assessment's converted file used."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import URL

from app.main import create_app
from tests.conftest import REFERENCE, make_settings, open_client
from tests.fx.fake import FX_KEY, FakeFreeCurrencyApi
from tests.helpers import upload

ASSESSMENT_RATE = "0.184965"


@pytest.fixture
def fake_fx() -> FakeFreeCurrencyApi:
    return FakeFreeCurrencyApi(latest_rate=ASSESSMENT_RATE)


@pytest.fixture
async def api(
    database_url: URL, tmp_path: Path, fake_fx: FakeFreeCurrencyApi, clean_db: None
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        database_url,
        tmp_path,
        fx_provider="freecurrencyapi",
        fx_api_key=FX_KEY,
        fx_api_url="http://fx.test/v1",
    )
    async for client in open_client(create_app(settings, http_transport=fake_fx.transport())):
        yield client


@pytest.fixture
async def reference(api: httpx.AsyncClient) -> httpx.AsyncClient:
    if not REFERENCE.exists():
        pytest.skip("../shared/reference is absent")
    for kind in ("products", "orders"):
        response = await upload(api, kind, (REFERENCE / "data" / f"{kind}.csv").read_bytes())
        assert response.status_code == 201
    return api
