"""`orderlens pipeline run` (issue 28, item 1): the Prefect flow FX refresh → sync → dbt
build → forecast run → freshness check against a real service, run by Prefect with a
temporary local server (no PREFECT_API_URL), as a user without a Prefect server runs it."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import re
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from sqlalchemy import URL
from typer.testing import CliRunner

from app import cli, pipeline
from app.cli import pipeline as pipeline_command
from tests.conftest import API_KEY
from tests.exports.conftest import post
from tests.exports.test_dbt_project import (
    assert_marts_equal_the_api,
    built_last,
    libpq,
    postgres_marts,
)
from tests.exports.test_sync import SERVICE_LOG


@pytest.fixture(autouse=True)
def root_logging_kept() -> Iterator[None]:
    """Importing Prefect configures logging for the whole process: a console handler on
    the root logger, bound to the stream of the moment (here CliRunner's, closed after
    the command). Restored after each test, so that later tests in this worker log as
    before (the service never imports Prefect; `orderlens pipeline` is a process of its
    own)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(autouse=True)
def prefect_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Prefect's own files (its temporary server's database) in the test's folder."""
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    # (its INFO lines, the temporary server's stop among them, would go to a closed stream)
    monkeypatch.setenv("PREFECT_LOGGING_LEVEL", "WARNING")


def _run(served: str, to: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        cli.cli,
        ["pipeline", "run", "--url", served, "--to", to, "--api-key", API_KEY, *args],
    )
    error = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        error += "".join(traceback.format_exception(result.exception))  # what stopped it
    return result.exit_code, result.stdout, error


@pytest.mark.one_server  # its PostgreSQL warehouse: test_a_postgresql_warehouse_kept_current
async def test_every_step_runs_and_says_what_it_did(served: str, tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    code, out, err = await asyncio.to_thread(_run, served, f"duckdb:///{path}")
    assert code == 0, (out, err)
    lines = dict(re.findall(r"^(fx|sync|dbt|forecast|freshness)\s+ok\s+(.*)$", out, re.M))
    assert list(lines) == ["fx", "sync", "dbt", "forecast", "freshness"], out
    assert lines["fx"].startswith("1 BRL = 0.184965 USD")
    assert "orders 300" in lines["sync"]
    assert lines["forecast"].startswith("run ")
    # (dbt ran in this process: its connection to the file is still open, read-write)
    with duckdb.connect(str(path)) as conn:
        [(orders,)] = conn.execute("SELECT count(*) FROM analytics.fct_orders").fetchall()
    assert orders == 300
    async with httpx.AsyncClient() as client:
        runs = (await client.get(f"{served}/forecasts/runs/latest")).json()
        fresh = (await client.get(f"{served}/freshness")).json()
    assert runs["status"] == "succeeded"
    assert [c["consumer"] for c in fresh["consumers"]] == [pipeline_command.PIPELINE_CONSUMER]


async def test_a_postgresql_warehouse_kept_current(served: str, warehouse_db: URL) -> None:
    """`--steps sync,dbt` into PostgreSQL, twice with an upload between: the marts equal
    the API each time, the second build writing only the new orders."""
    dsn, _ = libpq(warehouse_db)
    marts = postgres_marts(dsn)
    for run in range(2):
        if run:
            post(served, "orders", b"id,product_id,quantity,created_date\n9001,2,5,2024-11-30\n")
        code, out, err = await asyncio.to_thread(_run, served, dsn, "--steps", "sync,dbt")
        assert code == 0, (out, err)
        await asyncio.to_thread(assert_marts_equal_the_api, served, marts)
    assert built_last(marts) == 1


@pytest.mark.one_server
async def test_a_step_that_fails_stops_the_rest_and_is_told(served: str) -> None:
    """A warehouse that cannot be made: the sync fails (after its retries), dbt and the
    rest do not run, the exit code is 1 and the service records a `step_failed` alert."""
    code, out, err = await asyncio.to_thread(
        _run, served, "duckdb:////dev/null/w.duckdb", "--steps", "fx,sync,dbt"
    )
    assert code == 1, (out, err)
    assert re.search(r"^fx\s+ok", out, re.M)
    assert re.search(r"^sync\s+failed\s+cannot reach duckdb", out, re.M), out
    assert not re.search(r"^dbt\s", out, re.M)
    lines = [x for x in err.splitlines() if x.strip() and not SERVICE_LOG.match(x)]
    assert any("pipeline failed at sync" in x for x in lines), err
    async with httpx.AsyncClient() as client:
        told = (await client.get(f"{served}/alerts", params={"event": "step_failed"})).json()
    [alert] = told["items"]
    assert alert["subject"] == "pipeline sync" and "cannot reach duckdb" in alert["message"]

    # The flow run itself ends Failed, as Prefect's UI shows it (a copy that never
    # synced fails the freshness step, which is not retried).
    target = pipeline.Target(served, API_KEY, "duckdb:////dev/null/w.duckdb", "never-synced")
    outcome = await asyncio.to_thread(pipeline.run, target, ("freshness",))
    assert (outcome.failed, outcome.state) == ("freshness", "Failed")


def test_unknown_steps_are_refused() -> None:
    result = CliRunner().invoke(cli.cli, ["pipeline", "run", "--steps", "fx,deploy"])
    assert result.exit_code == 2
    assert "deploy" in result.stderr


def _serve(*args: str) -> object:
    return CliRunner().invoke(
        cli.cli,
        ["pipeline", "serve", "--steps", "sync,dbt", "--url", "http://127.0.0.1:9",
         "--api-key", "secret-key", *args],
    )  # fmt: skip


@pytest.mark.one_server
def test_serve_with_a_prefect_server_leaves_the_schedule_to_it_and_the_key_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With PREFECT_API_URL, `pipeline serve` hands Prefect a deployment with the cron and
    the steps; the key stays in the process's environment, out of the stored parameters."""
    from app import pipeline

    served: dict[str, object] = {}
    monkeypatch.setattr(pipeline.pipeline, "serve", lambda **kw: served.update(kw))
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    monkeypatch.setenv("API_KEY", "before")  # restored (unset) after the test
    result: Any = _serve("--cron", "*/15 * * * *")
    assert result.exit_code == 0, result.output
    assert served["cron"] == "*/15 * * * *" and served["name"] == "orderlens-pipeline"
    parameters = served["parameters"]
    assert isinstance(parameters, dict) and parameters["steps"] == ["sync", "dbt"]
    assert parameters["target"].api_key is None and "secret-key" not in repr(parameters)
    assert os.environ["API_KEY"] == "secret-key"


@pytest.mark.one_server
def test_serve_without_a_server_runs_the_flow_at_each_time_of_the_cron(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Prefect's temporary server has no scheduler: this process waits for each time the
    cron names and runs the flow then."""
    from app import pipeline

    start = dt.datetime(2026, 12, 6, 10, 7, tzinfo=dt.UTC)
    times = pipeline.schedule("*/15 * * * *", start)
    assert [next(times) for _ in range(2)] == [start.replace(minute=15), start.replace(minute=30)]
    monkeypatch.setattr(pipeline, "schedule", lambda cron: iter([start, start]))
    monkeypatch.setattr("app.pipeline.time.sleep", lambda seconds: None)
    ran: list[tuple[str, ...]] = []

    def run(target: object, steps: tuple[str, ...]) -> object:
        ran.append(steps)
        return pipeline.Outcome()

    monkeypatch.setattr(pipeline, "run", run)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    result: Any = _serve("--cron", "0 * * * *")
    assert result.exit_code == 0, result.output
    assert ran == [("sync", "dbt"), ("sync", "dbt")]
    bad: Any = _serve("--cron", "every hour")
    assert bad.exit_code == 2 and "not a cron expression" in bad.stderr
