"""The `orderlens` command: serve, migrate."""

from __future__ import annotations

import signal
import sys
from typing import Annotated

import typer
import uvicorn
from rich.console import Console

from app import db, logs
from app.config import get_settings
from app.security import resolve_api_key

cli = typer.Typer(
    name="orderlens",
    help="Orderlens: CSV uploads of products and orders, validated, loaded and analysed.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)


def _prepare() -> db.Database:
    """Find (or start) the database, wait for it and bring its schema to the head."""
    database = db.open_database(get_settings())
    db.wait_for_database(database.url)
    db.upgrade(database.url)
    return database


@cli.command()
def migrate() -> None:
    """Apply every pending migration to the database."""
    logs.configure(get_settings())
    _prepare().release()
    console.print(f"[green]schema at {db.head_revision()}[/green]")


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (PORT).")] = None,
) -> None:
    """Apply migrations, then serve the API, the docs and the dashboard."""
    from app.main import create_app

    settings = get_settings()
    logs.configure(settings)
    # uvicorn re-raises SIGTERM after its graceful shutdown; as SystemExit it lets the
    # embedded server be released instead of killing the process outright.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    database = _prepare()
    api_key, generated = resolve_api_key(settings)
    bind_host, bind_port = host or settings.host, port or settings.port
    base = f"http://{bind_host}:{bind_port}"
    console.print(f"Orderlens on [bold]{base}[/bold]   docs: [bold]{base}/docs[/bold]")
    if generated:
        # SPEC 1: an unset API_KEY is generated and printed (to the terminal, not the logs).
        console.print(f"API key (X-API-Key): [bold]{api_key.get_secret_value()}[/bold]")
    try:
        uvicorn.run(create_app(settings), host=bind_host, port=bind_port, log_level="info")
    finally:
        database.release()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
