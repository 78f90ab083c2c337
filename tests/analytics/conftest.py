"""Read-API fixtures: the service (`api`, with a fake FX provider at the rate the
assessment's converted file used) with the reference data loaded through the API."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import REFERENCE, require_reference
from tests.helpers import upload


@pytest.fixture
async def reference(api: httpx.AsyncClient) -> httpx.AsyncClient:
    require_reference()
    for kind in ("products", "orders"):
        response = await upload(api, kind, (REFERENCE / "data" / f"{kind}.csv").read_bytes())
        assert response.status_code == 201
    return api
