"""Forecasting fixtures: small realistic data from the generator, loaded via the API."""

from __future__ import annotations

import asyncio
import runpy
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import API_KEY
from tests.helpers import upload

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def realistic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 products × 120 days of the generator's realistic demand (some start late)."""
    out = tmp_path_factory.mktemp("realistic")
    generate = runpy.run_path(str(ROOT / "data" / "generate.py"))["main"]
    generate(
        [
            "--demand",
            "realistic",
            "--products",
            "12",
            "--days",
            "120",
            "--seed",
            "5",
            "--out",
            str(out),
        ]
    )
    return out


async def load(client: httpx.AsyncClient, folder: Path) -> None:
    for kind in ("products", "orders"):
        response = await upload(client, kind, (folder / f"{kind}.csv").read_bytes())
        assert response.status_code == 201, response.text


async def run_forecast(client: httpx.AsyncClient, horizon: int = 7) -> dict[str, Any]:
    """POST a run and wait for it to finish; its final state."""
    response = await client.post(
        "/forecasts/runs", json={"horizon": horizon}, headers={"X-API-Key": API_KEY}
    )
    assert response.status_code == 202, response.text
    return await wait_for_run(client, response.json()["run_id"])


async def wait_for_run(client: httpx.AsyncClient, run_id: int) -> dict[str, Any]:
    """A run's state once it is no longer running (two minutes at most)."""
    for _ in range(1200):
        state = (await client.get(f"/forecasts/runs/{run_id}")).json()
        if state["status"] != "running":
            return dict(state)
        await asyncio.sleep(0.1)
    raise AssertionError("the run did not finish")


async def wait_for_verdict(client: httpx.AsyncClient, run_id: int) -> dict[str, Any]:
    """A failed run's state once the run has said why (a reader may sweep it to
    `interrupted` first, when its connection died; the run's own account then replaces
    it): ten seconds at most."""
    state = await wait_for_run(client, run_id)
    for _ in range(100):
        if (state.get("error") or {}).get("code") != "interrupted":
            break
        await asyncio.sleep(0.1)
        state = (await client.get(f"/forecasts/runs/{run_id}")).json()
    return dict(state)
