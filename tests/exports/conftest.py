"""Feed fixtures: the service with a fake FX provider, empty tables."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import URL

from tests.conftest import open_client
from tests.fx.fake import FakeFreeCurrencyApi
from tests.helpers import fx_app

RATE = "0.184965"


@pytest.fixture
def fake_fx() -> FakeFreeCurrencyApi:
    return FakeFreeCurrencyApi(latest_rate=RATE)


@pytest.fixture
async def api(
    database_url: URL, tmp_path: Path, fake_fx: FakeFreeCurrencyApi, clean_db: None
) -> AsyncIterator[httpx.AsyncClient]:
    async for client in open_client(fx_app(database_url, tmp_path, fake_fx)):
        yield client
