"""The `orderlens` command: serve, migrate, ingest, export, sync, uploads, fx refresh,
forecast, pipeline.

Only typer at import time: `orderlens --help` must answer at once, so each command
imports what it needs (SQLAlchemy, pydantic, httpx, uvicorn, the app) when it runs.
tests/cli/test_startup.py fails if a heavy module is imported here again.
"""

from __future__ import annotations

import typer

from app.cli import client_commands, forecast, fx, pipeline, serve

cli = typer.Typer(
    name="orderlens",
    help="Orderlens: CSV uploads of products and orders, validated, loaded and analysed."
    " Commands that talk to a running service find the one `orderlens serve` runs from"
    " this folder's data directory, or take --url / ORDERLENS_URL.",
    no_args_is_help=True,
    add_completion=False,
)
# In the order `orderlens --help` lists them.
cli.command()(serve.migrate)
cli.command()(client_commands.ingest)
cli.command()(client_commands.export)
cli.command()(client_commands.sync)
cli.command()(client_commands.uploads)
cli.command()(serve.serve)
cli.add_typer(fx.fx_cli, name="fx")
cli.command()(forecast.forecast)
cli.add_typer(pipeline.pipeline_cli, name="pipeline")

__all__ = ["cli", "main"]


def main() -> None:
    cli()
