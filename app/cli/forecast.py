"""`orderlens forecast`: a run in this process, its progress bar, the accuracy table and
what it says in words."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from app.cli import common
from app.cli.common import ForecastEngine

if TYPE_CHECKING:
    from app import db
    from app.config import Settings
    from app.forecasting import runs
    from app.forecasting.engine import Result


def forecast(
    horizon: Annotated[int, typer.Option(min=1, max=365, help="Days after data_until")] = 28,
    engine: Annotated[
        ForecastEngine | None,
        typer.Option(help="Where the models are fitted (default: FORECAST_ENGINE)."),
    ] = None,
) -> None:
    """Run a forecast in this process against the configured database (the API's lock:
    one run at a time), with a progress bar; print the accuracy table. Exit 1 if it fails,
    2 if another run is in progress."""
    import asyncio

    from app import logs

    settings = common.settings()
    logs.configure(settings)
    chosen = engine or ForecastEngine(settings.forecast_engine.value)
    if chosen is ForecastEngine.DASK and not settings.dask_scheduler_address:
        raise typer.BadParameter("--engine dask needs DASK_SCHEDULER_ADDRESS")
    database = common.prepare()
    try:
        code = asyncio.run(_forecast(settings, database, horizon=horizon, engine=chosen.value))
    finally:
        database.release()
    if code:
        raise typer.Exit(code)


async def _forecast(settings: Settings, database: db.Database, *, horizon: int, engine: str) -> int:
    import asyncio

    from rich.progress import BarColumn, Progress, TimeElapsedColumn

    from app.forecasting import runs
    from app.forecasting.options import Options

    try:
        handle = await runs.start(url=database.url, horizon=horizon, engine_name=engine)
    except runs.RunInProgress as exc:
        common.err().print(f"[red]{exc.message}[/red] running: {exc.details['run_id']}")
        return 2
    options = Options(
        engine=engine,
        dask_address=settings.dask_scheduler_address,
        history_days=settings.forecast_history_days,
        time_budget_seconds=settings.forecast_time_budget_seconds,
    )
    work = asyncio.create_task(
        runs.execute(
            handle, url=database.url, options=options, keep_runs=settings.forecast_keep_runs
        )
    )
    columns = ("[progress.description]{task.description}", BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=common.err()) as bar:
        task = bar.add_task(f"forecast run {handle.run_id}", total=1.0)
        while not work.done():
            bar.update(
                task,
                completed=handle.progress,
                description=f"forecast run {handle.run_id}: {handle.stage}",
            )
            await asyncio.sleep(0.2)
        bar.update(task, completed=1.0)
    result = work.result()
    if result is None:
        error = handle.error or {}
        common.err().print(
            f"[red]forecast run {handle.run_id} failed[/red]: {error.get('message')}"
        )
        return 1
    _print_outcome(handle, result, horizon)
    return 0


def _print_outcome(handle: runs.Handle, result: Result, horizon: int) -> None:
    """What the run left out (stderr), then the accuracy table and, per level, the table
    in words."""
    from rich.table import Table

    from app.forecasting.schemas import ACCURACY_COLUMNS

    columns = [c for c in ACCURACY_COLUMNS if c not in LEFT_OUT_OF_THE_TABLE]
    if handle.left_out is not None:
        for line in left_out_lines(handle.left_out):
            common.err().print(f"[yellow]{line}[/yellow]")
    table = Table(title=f"forecast run {handle.run_id}: {len(result.products)} products")
    for name in columns:
        table.add_column(name, justify="left" if name in {"level", "model", "scope"} else "right")
    for row in [*result.level_accuracy, *result.accuracy]:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    common.out().print(table)
    for line in accuracy_in_words([*result.level_accuracy, *result.accuracy], horizon):
        common.out().print(line, highlight=False)


LEVEL_WORDS = {"total": "the whole shop", "category": "categories", "product": "products"}


def accuracy_in_words(rows: list[dict[str, Any]], horizon: int) -> list[str]:
    """Per level, the served forecast's backtest error against seasonal naive's, in one
    sentence (the table above holds the figures)."""
    from app.forecasting.series import MAX_WINDOWS

    lines = []
    for level, words in LEVEL_WORDS.items():
        served = next(
            (r for r in rows if r["level"] == level and "served" in {r["scope"], r["model"]}),
            None,
        )
        naive = next(
            (
                r
                for r in rows
                if r["level"] == level and r["model"] == "SeasonalNaive" and r["scope"] == "all"
            ),
            None,
        )
        if served is None or naive is None or not served["mae"] or not naive["mae"]:
            continue
        gain = round((1 - served["mae"] / naive["mae"]) * 100)
        than = (
            f"errors {gain}% smaller than seasonal naive's"
            if gain > 0
            else f"errors {-gain}% larger than seasonal naive's"
            if gain < 0
            else "errors as large as seasonal naive's"
        )
        lines.append(
            f"{words}: {than} on the days held back to test it"
            f" (up to {MAX_WINDOWS} × {horizon} days)"
        )
    return lines


# The accuracy table `orderlens forecast` prints, per level: `/forecasts/accuracy`'s
# columns but these two, so that it fits a terminal.
LEFT_OUT_OF_THE_TABLE = frozenset({"products", "rmse"})


def left_out_lines(left_out: dict[str, Any]) -> list[str]:
    """What a run left out of its series, in words (nothing when it left out nothing)."""
    after, before = left_out["after_today"], left_out["before_history"]
    lines = []
    if after["orders"]:
        lines.append(
            f"left out {after['orders']} orders ({after['units']} units) dated after today"
            f" ({after['today']}): {after['first_date']} to {after['last_date']}"
        )
    if before["orders"]:
        lines.append(
            f"left out {before['orders']} orders ({before['units']} units) dated before"
            f" {before['history_from']} (FORECAST_HISTORY_DAYS={before['history_days']})"
        )
    return lines


def _cell(value: object) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if isinstance(value, float) else str(value)
