"""The warehouse tests' service: a real uvicorn on a loopback port (the sync reads over
HTTP), the sample in data/ loaded through the API, a fake FX provider."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import URL

from tests.conftest import API_KEY
from tests.fx.fake import FakeFreeCurrencyApi
from tests.helpers import fx_app, live_server

SAMPLE = Path(__file__).parents[2] / "data"
RATE = "0.184965"


def post(base: str, kind: str, body: bytes, on_conflict: str = "reject") -> dict[str, object]:
    response = httpx.post(
        f"{base}/uploads/{kind}",
        files={"file": (f"{kind}.csv", body, "text/csv")},
        params={"on_conflict": on_conflict},
        headers={"X-API-Key": API_KEY},
        timeout=60,
    )
    assert response.status_code == 201, response.text
    report: dict[str, object] = response.json()
    return report


@pytest.fixture
def served(database_url: URL, tmp_path: Path, clean_db: None) -> Iterator[str]:
    """The service's base URL, with the sample loaded."""
    app = fx_app(database_url, tmp_path, FakeFreeCurrencyApi(latest_rate=RATE))
    with live_server(app) as base:
        for kind in ("products", "orders"):
            post(base, kind, (SAMPLE / f"{kind}.csv").read_bytes())
        yield base
