"""Read-API fixtures: the service with the reference data loaded through the API, and a
fake FX provider at the rate the assessment's converted file used."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import URL

from tests.conftest import REFERENCE, open_client, require_reference
from tests.fx.fake import FakeFreeCurrencyApi
from tests.helpers import fx_app, upload

ASSESSMENT_RATE = "0.184965"


@pytest.fixture
def fake_fx() -> FakeFreeCurrencyApi:
    return FakeFreeCurrencyApi(latest_rate=ASSESSMENT_RATE)


@pytest.fixture
async def api(
    database_url: URL, tmp_path: Path, fake_fx: FakeFreeCurrencyApi, clean_db: None
) -> AsyncIterator[httpx.AsyncClient]:
    async for client in open_client(fx_app(database_url, tmp_path, fake_fx)):
        yield client


@pytest.fixture
async def reference(api: httpx.AsyncClient) -> httpx.AsyncClient:
    require_reference()
    for kind in ("products", "orders"):
        response = await upload(api, kind, (REFERENCE / "data" / f"{kind}.csv").read_bytes())
        assert response.status_code == 201
    return api
