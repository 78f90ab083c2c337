"""The command line: `orderlens ingest` against a running service, and the sample load."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import URL
from typer.testing import CliRunner

from app import cli, db
from app.cli import common
from app.cli import serve as serve_command
from app.config import get_settings
from app.main import create_app
from tests.conftest import API_KEY
from tests.helpers import live_server

ROOT = Path(__file__).resolve().parents[2]


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


def test_ingest_says_loudly_when_half_or_more_was_rejected(live: str, tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["--url", live, "--api-key", API_KEY]
    runner.invoke(cli.cli, ["ingest", "products", str(ROOT / "data" / "products.csv"), *args])
    half = tmp_path / "orders.csv"
    half.write_text("id,product_id,quantity,created_date\n1,1,1,2024-12-01\n2,1,1,01/12/2024\n")
    result = runner.invoke(cli.cli, ["ingest", "orders", str(half), *args])
    assert result.exit_code == 0, result.output
    assert "1 (50.0%)" in result.output  # the rejected row of the report
    assert "warning: 50% of the rows were rejected (1 of 2), most as invalid_date" in (
        " ".join(result.stderr.split())
    )
    more = tmp_path / "more.csv"
    more.write_text("id,product_id,quantity,created_date\n3,1,1,2024-12-01\n4,1,1,01/12/2024\n")
    refused = runner.invoke(
        cli.cli, ["ingest", "orders", str(more), "-p", "max_rejected_share=0.4", *args]
    )
    assert refused.exit_code == 1
    assert "too_many_rejects" in refused.output
    export = tmp_path / "export.csv"
    export.write_text("Line,Item,Qty,When\n5,1,1,2024-12-01T10:00:00Z\n")
    mapped = runner.invoke(
        cli.cli,
        ["ingest", "orders", str(export), "--param", "columns=id=Line,product_id=Item,"
         "quantity=Qty,created_date=When", *args],
    )  # fmt: skip
    assert mapped.exit_code == 0, mapped.output
    assert "inserted" in mapped.output and "1 (0.0%)" not in mapped.output
    bad = runner.invoke(cli.cli, ["ingest", "orders", str(export), "-p", "columns", *args])
    assert bad.exit_code == 2 and "is not NAME=VALUE" in bad.output


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
    serve_command.load_sample(live, API_KEY, ROOT / "data")
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


# Nothing listens on port 1 (tcpmux): connections are refused at once.
NOWHERE = "http://127.0.0.1:1"


def test_help_reads_well() -> None:
    runner = CliRunner(env={"COLUMNS": "200"})
    result = runner.invoke(cli.cli, ["--help"])
    for command in ("export", "uploads", "fx"):
        assert command in result.output
    result = runner.invoke(cli.cli, ["export", "--help"])
    assert result.exit_code == 0
    for text in ("order_full_information", "kpi_product_orders", "--out", "--url", "--fx-mode"):
        assert text in result.output
    assert "Download one of the CSV exports" in result.output
    result = runner.invoke(cli.cli, ["uploads", "--help"])
    assert result.exit_code == 0
    assert "upload history" in result.output
    assert "--limit" in result.output


@pytest.mark.parametrize(
    "name", ["order_full_information", "fixed_order_full_information", "kpi_product_orders"]
)
def test_export_writes_the_exact_bytes(live: str, tmp_path: Path, name: str) -> None:
    serve_command.load_sample(live, API_KEY, ROOT / "data")
    expected = httpx.get(f"{live}/exports/{name}.csv").content
    assert expected.count(b"\n") > 2

    out = tmp_path / "out.csv"
    result = CliRunner().invoke(cli.cli, ["export", name, "--out", str(out), "--url", live])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == expected
    assert not (tmp_path / "out.csv.part").exists()
    assert f"{len(expected):,} bytes" in result.output

    result = CliRunner().invoke(cli.cli, ["export", name, "--url", live])
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == expected


def test_export_fails_in_one_clean_line(live: str, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(
        cli.cli, ["export", "kpi_product_orders", "--out", str(out), "--url", f"{live}/nowhere"]
    )
    assert result.exit_code == 1
    assert "404 not_found" in result.output
    assert "request " in result.output  # the request id, to find the service's log lines
    assert "Traceback" not in result.output
    assert not out.exists()
    assert not (tmp_path / "out.csv.part").exists()

    result = CliRunner().invoke(cli.cli, ["export", "kpi_product_orders", "--url", NOWHERE])
    assert result.exit_code == 1
    # One line (the live server in this process may log to the same stderr meanwhile).
    [line] = [line for line in result.output.splitlines() if line.startswith("export failed")]
    assert "could not reach" in line
    assert "Traceback" not in result.output

    result = CliRunner().invoke(cli.cli, ["export", "nonsense", "--url", live])
    assert result.exit_code == 2


def test_uploads_prints_the_history(live: str, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli.cli, ["uploads", "--url", live])
    assert result.exit_code == 0, result.output
    assert "no uploads yet" in result.output

    serve_command.load_sample(live, API_KEY, ROOT / "data")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    runner.invoke(cli.cli, ["ingest", "orders", str(empty), "--url", live, "--api-key", API_KEY])
    result = runner.invoke(cli.cli, ["uploads", "--url", live])
    assert result.exit_code == 0, result.output
    for text in ("ins", "rej", "products.csv", "orders.csv", "succeeded", "300", "empty_file"):
        assert text in result.output
    assert max(len(line) for line in result.stdout.splitlines()) <= 80  # the table only
    lines = result.output.splitlines()
    # Newest first: the failed upload, then orders, then products.
    assert [i for i, line in enumerate(lines) if "empty.csv" in line] < [
        i for i, line in enumerate(lines) if "products.csv" in line
    ]

    result = runner.invoke(cli.cli, ["uploads", "--url", live, "--kind", "products"])
    assert "products.csv" in result.output
    assert "orders.csv" not in result.output
    result = runner.invoke(cli.cli, ["uploads", "--url", NOWHERE])
    assert result.exit_code == 1
    assert "could not reach" in result.output


def test_serve_leaves_access_lines_and_log_format_to_the_app(
    database_url: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One access line per request (ours, not uvicorn's too), and uvicorn's own records
    through our handler, so that LOG_FORMAT=json covers them; the URL file exists while
    the server runs, and not after."""
    monkeypatch.setenv("DATABASE_URL", database_url.render_as_string(hide_password=False))
    monkeypatch.setenv("ORDERLENS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("API_KEY", API_KEY)
    calls: list[dict[str, Any]] = []
    seen_url_file: list[str] = []

    def run(app: Any, **kwargs: Any) -> None:
        calls.append(kwargs)
        seen_url_file.append((tmp_path / "url").read_text())

    monkeypatch.setattr(common, "prepare", lambda: db.Database(database_url))
    monkeypatch.setattr("uvicorn.run", run)
    monkeypatch.setattr("signal.signal", lambda *_: None)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli.cli, ["serve", "--port", "8201"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    [kwargs] = calls
    assert kwargs["access_log"] is False
    assert kwargs["log_config"] is None
    assert kwargs["port"] == 8201
    url_file = tmp_path / "url"
    assert seen_url_file == ["http://127.0.0.1:8201\n"]
    assert not url_file.exists(), "the URL file outlives the service"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A data directory of its own, as a user's checkout would have; no URL in the env."""
    folder = tmp_path / "data-dir"
    folder.mkdir()
    monkeypatch.setenv("ORDERLENS_DATA_DIR", str(folder))
    monkeypatch.setenv("API_KEY", API_KEY)
    monkeypatch.delenv("ORDERLENS_URL", raising=False)
    get_settings.cache_clear()
    yield folder
    get_settings.cache_clear()


class TestFindingTheService:
    def test_client_commands_use_the_url_that_serve_keeps(self, live: str, data_dir: Path) -> None:
        (data_dir / "url").write_text(live + "\n")
        runner = CliRunner()
        result = runner.invoke(cli.cli, ["ingest", "products", str(ROOT / "data" / "products.csv")])
        assert result.exit_code == 0, result.output
        assert "succeeded" in result.output
        result = runner.invoke(cli.cli, ["uploads"])
        assert result.exit_code == 0, result.output
        assert "products.csv" in result.output
        result = runner.invoke(cli.cli, ["export", "kpi_product_orders"])
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("kpi_name,value")

    def test_orderlens_url_and_url_option_win_over_the_file(
        self, live: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        (data_dir / "url").write_text(NOWHERE + "\n")
        monkeypatch.setenv("ORDERLENS_URL", live)
        result = CliRunner().invoke(cli.cli, ["uploads"])
        assert result.exit_code == 0, result.output
        monkeypatch.setenv("ORDERLENS_URL", NOWHERE)
        result = CliRunner().invoke(cli.cli, ["uploads", "--url", live])
        assert result.exit_code == 0, result.output

    def test_nothing_listening_names_the_url_and_the_way_out(self, data_dir: Path) -> None:
        url_file = data_dir / "url"
        url_file.write_text(NOWHERE + "\n")  # left behind by a service that was killed
        for args in (
            ["uploads"],
            ["export", "kpi_product_orders"],
            ["ingest", "products", str(ROOT / "data" / "products.csv")],
        ):
            result = CliRunner().invoke(cli.cli, args)
            assert result.exit_code == 1, result.output
            text = " ".join(result.output.split())
            assert f"could not reach {NOWHERE}" in text
            assert str(url_file) in text
            assert "pass --url or set ORDERLENS_URL" in text
            assert "Traceback" not in result.output

    def test_without_a_running_service_the_default_is_port_8000(self, data_dir: Path) -> None:
        assert common.service_url(None) == ("http://127.0.0.1:8000", "the default")
        assert common.service_url("http://h:1") == ("http://h:1", "--url or ORDERLENS_URL")

    @pytest.mark.parametrize(
        ("host", "url"),
        [
            ("127.0.0.1", "http://127.0.0.1:8000"),
            ("0.0.0.0", "http://127.0.0.1:8000"),
            ("::", "http://[::1]:8000"),
            ("example.org", "http://example.org:8000"),
        ],
    )
    def test_a_bound_address_becomes_a_url_to_reach(self, host: str, url: str) -> None:
        assert common.client_url(host, 8000) == url


class TestTheLocalKey:
    """Every client command finds the local service's key as `ingest` does, and takes
    `--api-key`; a wrong key's 401 says where the right one is."""

    def test_each_command_finds_it(
        self, database_url: URL, tmp_path: Path, clean_db: None, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from tests.conftest import make_settings

        # Reads need a key too; the key is only in the data folder, as `serve` leaves it.
        folder = tmp_path / "data-dir"
        folder.mkdir()
        (folder / "api-key").write_text(API_KEY + "\n")
        monkeypatch.setenv("ORDERLENS_DATA_DIR", str(folder))
        monkeypatch.delenv("API_KEY", raising=False)
        monkeypatch.delenv("ORDERLENS_URL", raising=False)
        get_settings.cache_clear()
        settings = make_settings(database_url, tmp_path, read_access="key")
        runner = CliRunner()
        try:
            with live_server(create_app(settings)) as base:
                (folder / "url").write_text(base + "\n")
                for args in (
                    ["ingest", "products", str(ROOT / "data" / "products.csv")],
                    ["uploads"],
                    ["export", "kpi_product_orders"],
                    ["sync", "--show-dataset"],
                ):
                    result = runner.invoke(cli.cli, args)
                    assert result.exit_code == 0, (args, result.output)
                for args in (["uploads"], ["export", "kpi_product_orders"]):
                    result = runner.invoke(cli.cli, [*args, "--api-key", "wrong"])
                    assert result.exit_code == 1, (args, result.output)
                    assert "401" in result.stderr or "unauthorized" in result.stderr
                    assert "orderlens serve" in result.stderr, result.stderr
        finally:
            get_settings.cache_clear()


async def _first_start(
    pg_server: URL,
    tmp_path: Path,
    extra: list[str],
    *,
    until: Callable[[str], bool],
) -> tuple[list[str], int]:
    """`orderlens serve --sample data` (and `extra`) on a new database: what it says on
    stderr up to the line `until` accepts, and its port."""
    import asyncio
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import create_database, drop_database
    from tests.helpers import free_port

    url = await create_database(pg_server, migrate=False)
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "DATABASE_URL": url.render_as_string(hide_password=False),
        "ORDERLENS_DATA_DIR": str(tmp_path / "data-dir"),
        "FX_PROVIDER": "ecb",
        "COLUMNS": "100",
    }
    command = [sys.executable, "-m", "app.cli", "serve", "--port", str(port)]
    command += ["--sample", str(ROOT / "data"), *extra]

    def serve_until(last: Callable[[str], bool]) -> list[str]:
        """Its lines up to the `last` one (pytest-timeout bounds the wait), then SIGTERM."""
        lines: list[str] = []
        process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
        try:
            assert process.stderr is not None
            for line in process.stderr:
                lines.append(line.rstrip("\n"))
                if last(line):
                    break
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        return lines

    try:
        return await asyncio.to_thread(serve_until, until), port
    finally:
        await drop_database(pg_server, url)


async def test_a_first_start_is_quiet_and_ends_with_where_and_the_key(
    pg_server: URL, tmp_path: Path
) -> None:
    """`orderlens serve --sample data` on a new database, as `make run` meets it: one
    line for the database (no migration narrated, no uvicorn start-up lines), the
    sample's reports, then last the URL, the docs and the key (issue 29)."""
    import re

    lines, port = await _first_start(
        pg_server, tmp_path, [], until=lambda line: line.startswith("API key")
    )
    said = "\n".join(lines)
    assert lines[0] == f"database ready, schema at {db.head_revision()}", said
    assert "alembic" not in said and "Running upgrade" not in said
    assert "Uvicorn running" not in said and "Application startup" not in said
    assert lines[-2] == f"Orderlens on http://127.0.0.1:{port}   docs: http://127.0.0.1:{port}/docs"
    key = (tmp_path / "data-dir" / "api-key").read_text().strip()
    assert re.fullmatch(r"API key \(X-API-Key, generated, kept in .*api-key\): " + key, lines[-1])
    # Between them, the sample's two reports (and the service's log of them).
    assert said.count("succeeded") == 2, said


async def test_a_demo_start_runs_a_forecast_and_says_when_it_is_done(
    pg_server: URL, tmp_path: Path
) -> None:
    """`serve --sample … --forecast` (`make demo`): once the sample is in, a forecast run
    starts, said before the URL and key; one more line when it ends."""
    lines, port = await _first_start(
        pg_server,
        tmp_path,
        ["--forecast"],
        until=lambda line: "forecast run 1 " in line and (" done " in line or "failed" in line),
    )
    said = "\n".join(lines)
    started = [i for i, line in enumerate(lines) if line.startswith("forecast run 1 started on")]
    where = [i for i, line in enumerate(lines) if line.startswith("Orderlens on")]
    assert started and where and started[0] < where[0], said
    assert re.fullmatch(
        rf"forecast run 1 done in \d+ s: http://127\.0\.0\.1:{port}/#forecast", lines[-1]
    ), said
    assert "UserWarning" not in said, said
