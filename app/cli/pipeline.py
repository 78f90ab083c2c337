"""`orderlens pipeline run | serve` (issue 28): FX refresh → sync → dbt build → forecast
run → freshness check, once or on a schedule."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any

import typer

from app.cli import common
from app.cli.common import DatasetOption, UrlOption

pipeline_cli = typer.Typer(
    help="The pipeline: FX refresh → sync → dbt build → forecast run → freshness check"
    " (Prefect 3).",
    no_args_is_help=True,
)

# The pipeline's name in the service's log of feed reads, by which /freshness checks it.
PIPELINE_CONSUMER = "orderlens-pipeline"
Command = Callable[..., None]
ALL_STEPS = "fx,sync,dbt,forecast,freshness"
StepsOption = Annotated[
    str,
    typer.Option(
        "--steps", help="Comma-separated, run in this order: fx,sync,dbt,forecast,freshness."
    ),
]
ToOption = Annotated[
    str,
    typer.Option(
        "--to",
        envvar="ORDERLENS_SYNC_TO",
        help="The warehouse the sync writes and dbt builds: duckdb:///path or postgresql://…",
    ),
]
KeyOption = Annotated[
    str | None,
    typer.Option(
        envvar="API_KEY",
        help="X-API-Key (the write key: the forecast step starts a run, a failed step is"
        " told to /alerts). Default: the local service's key.",
    ),
]
HorizonOption = Annotated[
    int, typer.Option(min=1, max=365, help="The forecast step's days after data_until.")
]


def _steps(value: str) -> tuple[str, ...]:
    from app.pipeline import STEPS

    asked = tuple(s.strip() for s in value.split(",") if s.strip())
    if unknown := [s for s in asked if s not in STEPS]:
        raise typer.BadParameter(
            f"unknown step {', '.join(unknown)}; the steps are {', '.join(STEPS)}",
            param_hint="--steps",
        )
    if not asked:
        raise typer.BadParameter("name at least one step", param_hint="--steps")
    return asked


def _target(
    url: str | None, to: str, api_key: str | None, horizon: int, dataset: str | None
) -> Any:
    from app.pipeline import Target

    base, _ = common.service_url(url)
    return Target(base, common.key(api_key), to, PIPELINE_CONSUMER, horizon, dataset)


def _pipeline_options(
    steps: StepsOption = ALL_STEPS,
    url: UrlOption = None,
    to: ToOption = common.DEFAULT_WAREHOUSE,
    api_key: KeyOption = None,
    horizon: HorizonOption = 28,
    dataset: DatasetOption = None,
) -> tuple[tuple[str, ...], Any]:
    """What every pipeline command is told: the steps, and the `Target` (the service it
    reads, the warehouse it writes)."""
    return _steps(steps), _target(url, to, api_key, horizon, dataset)


def _pipeline_command(name: str) -> Callable[[Command], Command]:
    """Registers `command(steps, target, **its own options)` as `orderlens pipeline
    <name>`: its own options first, then `_pipeline_options`'s, declared once for all."""

    def register(command: Command) -> Command:
        own = list(inspect.signature(command, eval_str=True).parameters.values())[2:]
        shared = list(inspect.signature(_pipeline_options, eval_str=True).parameters.values())

        @functools.wraps(command)
        def with_options(**given: Any) -> None:
            told = {p.name: given.pop(p.name) for p in shared}
            command(*_pipeline_options(**told), **given)

        # Typer reads the options from the signature (and their types from annotations).
        with_options.__signature__ = inspect.Signature(own + shared)  # type: ignore[attr-defined]
        with_options.__annotations__ = {p.name: p.annotation for p in own + shared}
        pipeline_cli.command(name)(with_options)
        return command

    return register


@_pipeline_command("run")
def pipeline_run(steps: tuple[str, ...], target: Any) -> None:
    """Run the pipeline once; print each step's result. Exit 1 if a step failed (it is
    told to the service's /alerts, and the steps after it do not run)."""
    from app import pipeline

    outcome = pipeline.run(target, steps)
    for step, result in outcome.results.items():
        failed = result.startswith("failed: ")
        text = result.removeprefix("failed: ")
        common.out().print(
            f"{step:<10} {'failed' if failed else 'ok':<7} {text}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if outcome.failed is not None:
        common.err().print(
            f"pipeline failed at {outcome.failed}", style="red", markup=False, highlight=False
        )
        raise typer.Exit(1)


@_pipeline_command("serve")
def pipeline_serve(
    steps: tuple[str, ...],
    target: Any,
    cron: Annotated[
        str, typer.Option(help="When to run, as cron: '0 * * * *' is every hour, on the hour.")
    ] = "0 * * * *",
) -> None:
    """Run the pipeline on a schedule until stopped (Ctrl-C). With PREFECT_API_URL set,
    that Prefect server schedules the runs and shows them in its UI; without, this
    process runs them at the times the cron names (UTC)."""
    from app import pipeline

    if not pipeline.valid_cron(cron):
        raise typer.BadParameter(f"{cron!r} is not a cron expression", param_hint="--cron")

    pipeline.serve(target, steps, cron)
