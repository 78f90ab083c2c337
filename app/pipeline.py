"""The pipeline (issue 28): FX refresh → sync → dbt build → forecast run → freshness
check, as the Prefect 3 flow `orderlens-pipeline` (imported only by the command that runs
it: Prefect takes a second to import).

Each step is a Prefect task with retries and exponential backoff, talking to a running
Orderlens over HTTP (as `orderlens sync` does) and building the warehouse in this
process; the flow stops at the first step that fails for good, tells the service
(`POST /alerts`, with the write key) and records each step's result. With no
`PREFECT_API_URL` Prefect runs it against a temporary local server of its own; with one,
the runs show in that server's UI.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from app.cli import client

# No telemetry from a machine that may have no internet (set before Prefect is imported);
# with no PREFECT_API_URL, Prefect runs a temporary local server for the run.
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from prefect import Task, flow, task
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run
from prefect.states import Failed

STEPS = ("fx", "sync", "dbt", "forecast", "freshness")
FLOW_NAME = "orderlens-pipeline"
# Retries of a step that failed, and the first wait (doubled each time).
RETRIES = 2
RETRY_DELAY_SECONDS = 2.0
# How long the forecast step waits for its run.
FORECAST_WAIT_SECONDS = 1800.0


class StepFailed(Exception):
    """A step that cannot succeed: one line for the user and the alert."""


@dataclass(frozen=True)
class Target:
    """What the pipeline works on: the service, its key, and the warehouse."""

    base_url: str
    api_key: str | None
    to: str
    consumer: str
    horizon: int = 28
    # The warehouse dataset the sync loads and dbt builds from; None: the service's
    # instance id (asked by each step that needs it)
    dataset: str | None = None
    # dbt's target and log folders; None: the warehouse's own under the user's cache
    # (never the project's), kept so that dbt parses again only what changed
    work: str | None = None

    def headers(self) -> dict[str, str]:
        key = self.api_key or os.environ.get("API_KEY")
        return client.key_header(key)


@dataclass
class Outcome:
    """Each step's result (or error), in order; `failed` names the step that failed."""

    results: dict[str, str] = field(default_factory=dict)
    failed: str | None = None
    # The flow run's final state in Prefect: Completed, or Failed when a step failed.
    state: str | None = None


# --- the steps (plain functions: the tasks wrap them) -----------------------------------


def _get(target: Target, path: str) -> dict[str, Any]:
    try:
        return client.get_json(base_url=target.base_url, path=path, headers=target.headers())
    except client.ClientError as exc:
        raise StepFailed(f"GET {path}: {exc}") from None


def fx(target: Target) -> str:
    """The BRL→USD rate the service serves now (fetched if its cache is stale)."""
    rate = _get(target, "/fx/rates/latest")
    stale = " (stale: the provider did not answer)" if rate.get("stale") else ""
    return f"1 BRL = {rate['rate']} USD as of {rate['as_of']}{stale}"


def sync(target: Target) -> str:
    from app.exports import sync as syncing

    service = syncing.Service(target.base_url, target.api_key, target.consumer)
    try:
        outcome = syncing.sync(service, target.to, dataset=target.dataset)
    except syncing.SyncError as exc:
        raise StepFailed(str(exc)) from None
    loaded = outcome.loaded()
    if outcome.unreported:
        loaded += f" (the service was not told: {outcome.unreported})"
    return loaded


def dbt_target(destination: str) -> tuple[str, dict[str, str]]:
    """dbt's target (warehouse/profiles.yml) and environment for a sync destination."""
    from app.exports import sync as syncing

    dest = syncing.parse_destination(destination)
    if dest.kind == "duckdb":
        return "duckdb", {"ORDERLENS_WAREHOUSE": dest.target}
    if dest.kind == "postgres":
        parts = urlsplit(dest.target)
        host = parse_qs(parts.query).get("host", [parts.hostname or "127.0.0.1"])[0]
        return "postgres", {
            "WAREHOUSE_PG_HOST": host,
            "WAREHOUSE_PG_PORT": str(parts.port or 5432),
            "WAREHOUSE_PG_USER": parts.username or "postgres",
            "WAREHOUSE_PG_PASSWORD": parts.password or "",
            "WAREHOUSE_PG_DATABASE": parts.path.lstrip("/"),
        }
    raise StepFailed(f"dbt builds on DuckDB or PostgreSQL, not {dest.kind}")


def dbt_work(destination: str) -> Path:
    """dbt's folder for one warehouse: $XDG_CACHE_HOME (~/.cache)/orderlens/dbt/<digest>.
    Its partial-parse file saves a second and a half of each build."""
    import hashlib

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(destination.encode()).hexdigest()[:16]
    return cache / "orderlens" / "dbt" / digest


def dbt(target: Target) -> str:
    """`dbt build` of the warehouse project on the synced tables."""
    from app.exports import dbt_project
    from app.exports import sync as syncing

    name, env = dbt_target(target.to)
    service = syncing.Service(target.base_url, target.api_key)
    try:
        env["ORDERLENS_DATASET"] = syncing.resolve_dataset(service, target.to, target.dataset)
    except syncing.SyncError as exc:
        raise StepFailed(str(exc)) from None
    result = dbt_project.invoke(["build"], name, env, Path(target.work or dbt_work(target.to)))
    nodes: Any = result.result or []
    bad = [f"{r.node.name}: {r.status}" for r in nodes if str(r.status) not in ("success", "pass")]
    if not result.success:
        raise StepFailed("dbt build failed: " + ("; ".join(bad[:5]) or str(result.exception)))
    return f"{len(nodes)} models and tests built"


def forecast(target: Target) -> str:
    """Start a forecast run (or wait for the one in progress) and wait for its end."""
    try:
        started = client.post_json(
            base_url=target.base_url,
            path="/forecasts/runs",
            body={"horizon": target.horizon},
            headers=target.headers(),
        )
        run_id = started["run_id"]
    except client.ClientError as exc:
        error = (exc.body or {}).get("error", {})
        if error.get("code") != "run_in_progress":
            raise StepFailed(f"POST /forecasts/runs: {exc}") from None
        run_id = error["details"]["run_id"]  # one is running: that one is this step's
    deadline = time.monotonic() + FORECAST_WAIT_SECONDS
    while True:
        run = _get(target, f"/forecasts/runs/{run_id}")
        if run["status"] == "succeeded":
            return f"run {run_id}: {run.get('products')} products, data until {run['data_until']}"
        if run["status"] == "failed":
            error = run.get("error") or {}
            raise StepFailed(f"forecast run {run_id} failed: {error.get('message')}")
        if time.monotonic() > deadline:
            raise StepFailed(
                f"forecast run {run_id} still running after {FORECAST_WAIT_SECONDS:g} s"
            )
        time.sleep(1.0)


def freshness(target: Target) -> str:
    """The data, and this pipeline's own copy of it, within the service's SLA."""
    now = _get(target, "/freshness")
    mine = [c for c in now["consumers"] if c["consumer"] == target.consumer]
    if now["stale"]:
        raise StepFailed(f"the data is stale: no upload for {now['age_seconds']} s")
    if not mine or any(c["stale"] for c in mine):
        raise StepFailed(f"{target.consumer}'s copy is stale, or it never finished a sync")
    return f"data until {now['data_until']}, last upload {now['last_upload_at']}"


# --- the flow -----------------------------------------------------------------------------


def _step(
    function: Callable[[Target], str], name: str, retries: int = RETRIES
) -> Task[[Target], str]:
    """A step as a task: retried after 2 s, then 4 s (exponential backoff)."""
    delays = [RETRY_DELAY_SECONDS * 2**n for n in range(retries)]
    return task(name=name, retries=retries, retry_delay_seconds=delays)(function)


TASKS = {
    "fx": _step(fx, "fx"),
    "sync": _step(sync, "sync"),
    "dbt": _step(dbt, "dbt"),
    "forecast": _step(forecast, "forecast"),
    # Data that is stale is not fresh seconds later: told at once.
    "freshness": _step(freshness, "freshness", retries=0),
}


@flow(name=FLOW_NAME)
def pipeline(target: Target, steps: list[str]) -> Any:
    """Each step in order, stopping at the first that fails for good (which is told to
    the service); every step's result, and the one that failed. A run with a failed
    step ends Failed (so Prefect's UI shows it), its results kept in the state."""
    run = str(flow_run.id)
    outcome = Outcome()
    for step in [s for s in STEPS if s in steps]:
        try:
            outcome.results[step] = TASKS[step](target)
        except Exception as exc:
            outcome.results[step] = f"failed: {exc}"
            outcome.failed = step
            client.tell_failure(
                base_url=target.base_url,
                api_key=target.headers().get("X-API-Key"),
                subject=f"pipeline {step}",
                message=str(exc),
                key=run,
            )
            break
    answer = {"results": outcome.results, "failed": outcome.failed}
    if outcome.failed:
        return Failed(message=f"pipeline failed at {outcome.failed}", data=answer)
    return answer


# What the steps import when they first run (seconds: dbt 1.7, dlt and pyarrow 0.7).
WARM_IMPORTS = {
    "sync": ("dlt", "pyarrow.parquet"),
    "dbt": ("dbt.cli.main", "dbt.adapters.duckdb", "dbt.adapters.postgres"),
}


def warm(steps: tuple[str, ...]) -> threading.Thread:
    """Import the steps' libraries in the background: while Prefect starts its temporary
    server (a subprocess, seconds), not after it. A library that fails to import here
    fails again, with its message, in its step."""

    def imports() -> None:
        for step in steps:
            for module in WARM_IMPORTS.get(step, ()):
                with contextlib.suppress(Exception):
                    importlib.import_module(module)

    thread = threading.Thread(target=imports, name="orderlens-warm", daemon=True)
    thread.start()
    return thread


def start_temporary_server(steps: tuple[str, ...]) -> None:
    """With no PREFECT_API_URL, Prefect starts a temporary server (a subprocess, 4 s)
    when the flow first talks to its API. Started here instead (the same one: Prefect
    keeps a single instance), with the steps' libraries imported while it comes up."""
    if os.environ.get("PREFECT_API_URL"):
        warm(steps)
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    warm(steps)
    server.start()


def run(target: Target, steps: tuple[str, ...] = STEPS) -> Outcome:
    """Run the flow once; its outcome (a failed step ends the run Failed, not raised)."""
    start_temporary_server(steps)
    # A sync flow's state (Prefect types the call for async flows too).
    state: State[Any] = pipeline(target, list(steps), return_state=True)  # type: ignore[assignment]
    answer = state.result(raise_on_failure=False)
    if not isinstance(answer, dict):  # the flow itself broke: no step's result
        return Outcome(results={"flow": f"failed: {answer}"}, failed="flow", state=state.name)
    return Outcome(results=dict(answer["results"]), failed=answer["failed"], state=state.name)


def serve(target: Target, steps: tuple[str, ...], cron: str) -> None:
    """Run the flow on a schedule until stopped. With PREFECT_API_URL (a Prefect server,
    which schedules): a deployment served by this process, its runs in that server's UI;
    the key stays in this process's environment (API_KEY), out of the deployment's stored
    parameters. Without one (Prefect's temporary server has no scheduler): this process
    waits for each time the cron names (UTC) and runs the flow then."""
    if os.environ.get("PREFECT_API_URL"):
        if target.api_key:
            os.environ["API_KEY"] = target.api_key
        stored = replace(target, api_key=None)
        parameters = {"target": stored, "steps": list(steps)}
        pipeline.serve(name=FLOW_NAME, cron=cron, parameters=parameters)
        return
    for when in schedule(cron):
        time.sleep(max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds()))
        outcome = run(target, steps)
        print(f"{when.isoformat()}: {'failed at ' + outcome.failed if outcome.failed else 'ok'}")


def schedule(cron: str, start: dt.datetime | None = None) -> Iterator[dt.datetime]:
    """The times (UTC) a cron expression names after `start` (now)."""
    from cronsim import CronSim

    return iter(CronSim(cron, start or dt.datetime.now(dt.UTC)))


def valid_cron(cron: str) -> bool:
    from cronsim import CronSim, CronSimError

    try:
        CronSim(cron, dt.datetime.now(dt.UTC))
    except CronSimError:
        return False
    return True
