"""The `orderlens` command: serve, migrate, ingest, export, uploads, fx refresh."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import httpx
import typer
import uvicorn
from rich.console import Console
from sqlalchemy import text

from app import client, db, logs
from app.config import FxMode, Settings, get_settings
from app.fx import schemas as fx_schemas
from app.fx import service as fx_service
from app.fx.cache import Rate
from app.security import api_key_file, resolve_api_key
from app.uploads.models import OnConflict, UploadKind

cli = typer.Typer(
    name="orderlens",
    help="Orderlens: CSV uploads of products and orders, validated, loaded and analysed."
    " Commands that talk to a running service take --url (default: the local one).",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)


def _prepare() -> db.Database:
    """Find (or start) the database, wait for it and bring its schema to the head."""
    database = db.open_database(get_settings())
    db.wait_for_database(database.url)
    try:
        # Before migrating: on an old server the migrations would fail half-way, obscurely.
        db.require_supported_server(database.url)
    except db.UnsupportedServer as exc:
        database.release()
        raise SystemExit(str(exc)) from None  # the sentence on stderr, exit status 1
    db.upgrade(database.url)
    return database


@cli.command()
def migrate() -> None:
    """Apply every pending migration to the database."""
    logs.configure(get_settings())
    _prepare().release()
    console.print(f"[green]schema at {db.head_revision()}[/green]")


def _local_url() -> str:
    settings = get_settings()
    host = "127.0.0.1" if settings.host in {"0.0.0.0", "::"} else settings.host  # noqa: S104
    return f"http://{host}:{settings.port}"


def _local_key() -> str | None:
    settings = get_settings()
    if settings.api_key is not None:
        return settings.api_key.get_secret_value()
    path = api_key_file(settings)
    return path.read_text().strip() if path.exists() else None


def _fail_line(message: str) -> NoReturn:
    """One red line, as is (the service's message is not markup), then exit 1."""
    console.print(message, style="red", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(1)


UrlOption = Annotated[
    str | None,
    typer.Option(help="The service's base URL (default: http://HOST:PORT, the local one)."),
]


@cli.command()
def ingest(
    kind: Annotated[UploadKind, typer.Argument(help="What the file holds.")],
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The CSV file.")
    ],
    url: UrlOption = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="API_KEY", help="X-API-Key (default: API_KEY or the local generated key)."
        ),
    ] = None,
    on_conflict: Annotated[
        OnConflict, typer.Option(help="Stored ids with other values: reject or update.")
    ] = OnConflict.REJECT,
) -> None:
    """Upload a CSV to a running service with a progress bar, then print its report."""
    base = url or _local_url()
    key = api_key or _local_key()
    if not key:
        console.print("[red]No API key: pass --api-key or set API_KEY.[/red]")
        raise typer.Exit(2)
    try:
        report = client.upload(
            base_url=base,
            api_key=key,
            kind=kind.value,
            path=file,
            on_conflict=on_conflict.value,
            console=console,
        )
    except client.ClientError as exc:
        _fail_line(f"upload failed: {exc}")
    Console().print(client.report_table(report, base))


class ExportName(StrEnum):
    """The assessment's three files (GET /exports/NAME.csv)."""

    ORDER_FULL_INFORMATION = "order_full_information"
    FIXED_ORDER_FULL_INFORMATION = "fixed_order_full_information"
    KPI_PRODUCT_ORDERS = "kpi_product_orders"


@cli.command()
def export(
    name: Annotated[
        ExportName,
        typer.Argument(
            metavar="NAME",
            show_choices=False,
            help="order_full_information, fixed_order_full_information or"
            " kpi_product_orders: the assessment's files, at /exports/NAME.csv.",
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            dir_okay=False,
            help="Write to this file (replaced only once the download is complete);"
            " default or '-': standard output.",
        ),
    ] = None,
    url: UrlOption = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="API_KEY",
            help="X-API-Key to send (reads need none; for a gateway that wants one).",
        ),
    ] = None,
    fx_mode: Annotated[
        FxMode | None,
        typer.Option(help="USD at the latest rate or at each order's date (default: FX_MODE)."),
    ] = None,
) -> None:
    """Download one of the CSV exports, streamed to a file or standard output."""
    base = url or _local_url()
    params = {"fx_mode": fx_mode.value} if fx_mode else None
    path = f"/exports/{name.value}.csv"
    try:
        if out is None or str(out) == "-":
            client.download(
                base_url=base,
                path=path,
                out=sys.stdout.buffer,
                params=params,
                api_key=api_key,
                console=console,
            )
            return
        partial = out.with_name(out.name + ".part")
        try:
            with partial.open("wb") as fh:
                written = client.download(
                    base_url=base,
                    path=path,
                    out=fh,
                    params=params,
                    api_key=api_key,
                    console=console,
                )
            partial.replace(out)
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
    except client.ClientError as exc:
        _fail_line(f"export failed: {exc}")
    console.print(f"{out}: {written:,} bytes", markup=False, highlight=False, soft_wrap=True)


@cli.command()
def uploads(
    url: UrlOption = None,
    limit: Annotated[
        int, typer.Option(min=1, max=1000, help="How many uploads to show, newest first.")
    ] = 20,
    kind: Annotated[UploadKind | None, typer.Option(help="Only uploads of this kind.")] = None,
) -> None:
    """Print the upload history (GET /uploads) as a table."""
    base = url or _local_url()
    params: dict[str, str | int] = {"limit": limit}
    if kind is not None:
        params["kind"] = kind.value
    try:
        page = client.get_json(base_url=base, path="/uploads", params=params)
    except client.ClientError as exc:
        _fail_line(f"uploads failed: {exc}")
    if not page["items"]:
        Console().print("no uploads yet")
        return
    Console().print(client.uploads_table(page["items"]))


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (PORT).")] = None,
    sample: Annotated[
        Path | None,
        typer.Option(
            help="Folder with products.csv and orders.csv to upload, through the API,"
            " when the database is empty."
        ),
    ] = None,
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
    if sample is not None and asyncio.run(_is_empty(database)):
        threading.Thread(
            target=_load_sample,
            args=(base, api_key.get_secret_value(), sample),
            daemon=True,
        ).start()
    try:
        # Our middleware writes the access lines and our handler formats uvicorn's own
        # records (text or JSON), so uvicorn neither logs access nor configures logging.
        uvicorn.run(
            create_app(settings),
            host=bind_host,
            port=bind_port,
            log_level="info",
            log_config=None,
            access_log=False,
        )
    finally:
        database.release()


EMPTY = "SELECT NOT EXISTS (SELECT 1 FROM products) AND NOT EXISTS (SELECT 1 FROM orders)"


async def _is_empty(database: db.Database) -> bool:
    engine = db.create_engine(database.url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return bool(await conn.scalar(text(EMPTY)))
    finally:
        await engine.dispose()


def _load_sample(base: str, api_key: str, folder: Path) -> None:
    """Once the service answers, upload the sample through the same path as `ingest`."""
    for _ in range(300):
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    for kind in ("products", "orders"):
        path = folder / f"{kind}.csv"
        try:
            report = client.upload(
                base_url=base, api_key=api_key, kind=kind, path=path, console=console
            )
        except client.ClientError as exc:
            console.print(f"[red]sample {kind} not loaded: {exc}[/red]")
            return
        console.print(client.report_table(report, base))


fx_cli = typer.Typer(help="BRL→USD rates.", no_args_is_help=True)
cli.add_typer(fx_cli, name="fx")


@fx_cli.command("refresh")
def fx_refresh() -> None:
    """Fetch the current rate from the provider now and store it."""
    settings = get_settings()
    logs.configure(settings)
    database = _prepare()
    try:
        rate = asyncio.run(_refresh(settings, database))
    finally:
        database.release()
    Console().print(
        f"1 BRL = {fx_schemas.rate_text(rate.rate)} USD  source {rate.source}"
        f"  as of {rate.as_of}  fetched {rate.fetched_at:%Y-%m-%d %H:%M:%S %Z}"
        + ("  [yellow](stale: the source did not answer)[/yellow]" if rate.stale else "")
    )
    if rate.stale:
        raise typer.Exit(1)


async def _refresh(settings: Settings, database: db.Database) -> Rate:
    engine = db.create_engine(database.url, pool_size=1)
    try:
        async with httpx.AsyncClient() as http:
            return await fx_service.build(settings, http=http, engine=engine).latest(refresh=True)
    finally:
        await engine.dispose()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
