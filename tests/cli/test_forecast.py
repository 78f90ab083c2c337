"""`orderlens forecast`: a run in process, its progress bar and the accuracy table."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from sqlalchemy import URL
from typer.testing import CliRunner, Result

from app import cli
from app.cli import forecast as forecast_cli
from app.config import get_settings
from tests.forecasting.conftest import load
from tests.helpers import upload


async def forecast_command(
    monkeypatch: pytest.MonkeyPatch, database_url: URL, tmp_path: Path, **env: str
) -> Result:
    """`orderlens forecast --horizon 7` against the test database, with `env` set."""
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    monkeypatch.setenv("ORDERLENS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FX_PROVIDER", "ecb")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        runner = CliRunner(env={"COLUMNS": "200"})
        args = ["forecast", "--horizon", "7"]
        return await asyncio.to_thread(lambda: runner.invoke(cli.cli, args))
    finally:
        get_settings.cache_clear()


def test_forecast_engine_is_a_choice_and_dask_needs_a_scheduler(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ORDERLENS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("FORECAST_ENGINE", raising=False)
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    get_settings.cache_clear()
    try:
        runner = CliRunner(env={"COLUMNS": "200"})
        result = runner.invoke(cli.cli, ["forecast", "--engine", "spark"])
        assert result.exit_code == 2
        assert "'spark' is not one of 'local', 'dask'" in result.output
        result = runner.invoke(cli.cli, ["forecast", "--engine", "dask"])
        assert result.exit_code == 2
        assert "--engine dask needs DASK_SCHEDULER_ADDRESS" in result.output
    finally:
        get_settings.cache_clear()


async def test_forecast_command_runs_and_prints_accuracy(
    client: httpx.AsyncClient,
    realistic: Path,
    database_url: URL,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await load(client, realistic)
    result = await forecast_command(monkeypatch, database_url, tmp_path)
    assert result.exit_code == 0, result.output
    assert "SeasonalNaive" in result.output
    assert "coverage_80" in result.output
    for level in ("total", "category", "product"):
        assert f"│ {level} " in result.output  # a row of each level
    # Then each level in words, from the same rows: the served model's MAE against
    # seasonal naive's.
    rows = (await client.get("/forecasts/accuracy")).json()["items"]
    for level, words in forecast_cli.LEVEL_WORDS.items():
        served = next(
            r for r in rows if r["level"] == level and "served" in (r["scope"], r["model"])
        )
        naive = next(
            r
            for r in rows
            if r["level"] == level and r["model"] == "SeasonalNaive" and r["scope"] == "all"
        )
        gain = round((1 - served["mae"] / naive["mae"]) * 100)
        said = f"{abs(gain)}% {'smaller' if gain > 0 else 'larger'}" if gain else "as large as"
        assert f"{words}: errors {said}" in result.output, result.output
    assert "(up to 3 × 7 days)" in result.output
    latest = (await client.get("/forecasts/runs/latest")).json()
    assert latest["status"] == "succeeded"
    assert latest["products"] == 12


async def test_forecast_command_says_what_it_left_out(
    client: httpx.AsyncClient,
    realistic: Path,
    database_url: URL,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await load(client, realistic)
    stray = "id,product_id,quantity,created_date\n9000001,1,4,2999-12-31\n"
    assert (await upload(client, "orders", stray)).status_code == 201
    # The 120 days' first half left out.
    result = await forecast_command(monkeypatch, database_url, tmp_path, FORECAST_HISTORY_DAYS="60")
    assert result.exit_code == 0, result.output
    assert "left out 1 orders (4 units) dated after today" in result.output
    assert "2999-12-31 to 2999-12-31" in result.output
    assert "(FORECAST_HISTORY_DAYS=60)" in result.output
    latest = (await client.get("/forecasts/runs/latest")).json()
    assert latest["left_out"]["before_history"]["orders"] > 0
