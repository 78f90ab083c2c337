"""The command line: `orderlens ingest` against a running service, and the sample load."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import URL
from typer.testing import CliRunner

from app import cli
from app.config import Settings, get_settings
from app.main import create_app
from tests.conftest import API_KEY
from tests.helpers import live_server

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def live(settings: Settings, clean_db: None) -> Iterator[str]:
    """The service on a real port, as the CLI would meet it."""
    with live_server(create_app(settings)) as base:
        yield base


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(cli.cli, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "migrate", "ingest"):
        assert command in result.output


def test_ingest_prints_the_report(live: str, tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["--url", live, "--api-key", API_KEY]
    result = runner.invoke(
        cli.cli, ["ingest", "products", str(ROOT / "data" / "products.csv"), *args]
    )
    assert result.exit_code == 0, result.output
    assert "succeeded" in result.output
    assert "inserted" in result.output

    bad = tmp_path / "orders.csv"
    bad.write_text("id,product_id,quantity,created_date\n1,1,1,2024-12-01\n2,999,1,2024-12-01\n")
    result = runner.invoke(cli.cli, ["ingest", "orders", str(bad), *args])
    assert result.exit_code == 0, result.output
    assert "unknown_product" in result.output
    assert "/rejects?format=csv" in result.output


def test_ingest_fails_loudly(live: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    runner = CliRunner()
    result = runner.invoke(
        cli.cli, ["ingest", "orders", str(empty), "--url", live, "--api-key", API_KEY]
    )
    assert result.exit_code == 1
    assert "empty_file" in result.output
    result = runner.invoke(
        cli.cli, ["ingest", "orders", str(empty), "--url", live, "--api-key", "no"]
    )
    assert result.exit_code == 1
    assert "unauthorized" in result.output


def test_sample_loads_through_the_api(live: str) -> None:
    cli._load_sample(live, API_KEY, ROOT / "data")
    uploads = httpx.get(f"{live}/uploads").json()["items"]
    assert [(u["kind"], u["rows_inserted"], u["rows_rejected"]) for u in uploads] == [
        ("orders", 300, 0),
        ("products", 20, 0),
    ]


def test_fx_refresh_fetches_and_stores(
    database_url: URL, tmp_path: Path, clean_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    monkeypatch.setenv("FX_PROVIDER", "ecb")
    monkeypatch.setenv("ORDERLENS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("FX_API_KEY", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli.cli, ["fx", "refresh"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "1 BRL = 0." in result.output
    assert "source ecb" in result.output
