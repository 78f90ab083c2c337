"""`orderlens forecast`: a run in process, its progress bar and the accuracy table."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from sqlalchemy import URL
from typer.testing import CliRunner

from app import cli
from app.config import get_settings
from tests.forecasting.conftest import load


async def test_forecast_command_runs_and_prints_accuracy(
    client: httpx.AsyncClient,
    realistic: Path,
    database_url: URL,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await load(client, realistic)
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    monkeypatch.setenv("ORDERLENS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FX_PROVIDER", "ecb")
    get_settings.cache_clear()
    try:
        runner = CliRunner(env={"COLUMNS": "200"})
        result = await asyncio.to_thread(runner.invoke, cli.cli, ["forecast", "--horizon", "7"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "SeasonalNaive" in result.output
    assert "coverage_80" in result.output
    latest = (await client.get("/forecasts/runs/latest")).json()
    assert latest["status"] == "succeeded"
    assert latest["products"] == 12
