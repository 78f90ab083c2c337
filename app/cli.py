"""The `orderlens` command: serve, migrate, ingest, export, uploads, fx refresh."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

# Only typer at import time: `orderlens --help` must answer at once, so each command
# imports what it needs (SQLAlchemy, pydantic, httpx, uvicorn, the app) when it runs.
# tests/test_cli_startup.py fails if a heavy module is imported here again.
if TYPE_CHECKING:
    from rich.console import Console

    from app import db, embedded
    from app.config import Settings
    from app.fx.cache import Rate

DEFAULT_URL = "http://127.0.0.1:8000"
URL_FILE = "url"
UNREACHABLE_HINT = "Is the service running? If it runs elsewhere, pass --url or set ORDERLENS_URL."


# The commands' choices, as the service spells them. Imported from app.uploads.models
# and app.config they would cost --help SQLAlchemy and pydantic; tests pin them equal.
class UploadKind(StrEnum):
    PRODUCTS = "products"
    ORDERS = "orders"


class OnConflict(StrEnum):
    REJECT = "reject"
    UPDATE = "update"


class FxMode(StrEnum):
    LATEST = "latest"
    ORDER_DATE = "order_date"


cli = typer.Typer(
    name="orderlens",
    help="Orderlens: CSV uploads of products and orders, validated, loaded and analysed."
    " Commands that talk to a running service find the one `orderlens serve` runs from"
    " this folder's data directory, or take --url / ORDERLENS_URL.",
    no_args_is_help=True,
    add_completion=False,
)


@cache
def _err() -> Console:
    """Standard error, for progress, messages and failures."""
    from rich.console import Console

    return Console(stderr=True)


def _out() -> Console:
    from rich.console import Console

    return Console()


def _settings() -> Settings:
    from app.config import get_settings

    return get_settings()


def _prepare() -> db.Database:
    """Find (or start) the database, wait for it and bring its schema to the head."""
    from app import db

    database = db.open_database(_settings())
    db.wait_for_database(database.url)
    try:
        # Before migrating: on an old server the migrations would fail half-way, obscurely.
        db.require_supported_server(database.url)
        db.require_known_timezone(database.url, _settings().business_timezone)
    except (db.UnsupportedServer, db.UnknownTimezone) as exc:
        database.release()
        raise SystemExit(str(exc)) from None  # the sentence on stderr, exit status 1
    db.upgrade(database.url)
    return database


@cli.command()
def migrate() -> None:
    """Apply every pending migration to the database."""
    from app import db, logs

    logs.configure(_settings())
    _prepare().release()
    _err().print(f"[green]schema at {db.head_revision()}[/green]")


def client_url(host: str, port: int) -> str:
    """The URL a client on this machine reaches a service bound to `host`:`port` at."""
    if host in {"0.0.0.0", ""}:  # noqa: S104 - every IPv4 address, so loopback too
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _service_url(url: str | None) -> tuple[str, str]:
    """The service a client command talks to, and where that URL came from: --url or
    ORDERLENS_URL; else the URL `orderlens serve` keeps in the data directory while it
    runs; else http://HOST:PORT (http://127.0.0.1:8000 by default)."""
    if url:
        return url, "--url or ORDERLENS_URL"
    settings = _settings()
    path = settings.orderlens_data_dir / URL_FILE
    with contextlib.suppress(OSError, UnicodeDecodeError):
        if written := path.read_text(encoding="utf-8").strip():
            return written, f"from {path}, written by `orderlens serve`"
    if (settings.host, settings.port) == ("127.0.0.1", 8000):
        return DEFAULT_URL, "the default"
    return client_url(settings.host, settings.port), "from HOST and PORT"


def _local_key() -> str | None:
    from app.security import api_key_file

    settings = _settings()
    if settings.api_key is not None:
        return settings.api_key.get_secret_value()
    path = api_key_file(settings)
    return path.read_text().strip() if path.exists() else None


def _fail(what: str, exc: Exception, base: str, source: str) -> NoReturn:
    """One red line, as is (the service's message is not markup), then exit 1. When
    nothing answered, the line names the URL tried, where it came from, and the way out."""
    from app import client

    message = f"{what} failed: {exc}"
    if isinstance(exc, client.ClientError) and exc.unreachable:
        message = f"{what} failed: could not reach {base} ({source}): {exc}. {UNREACHABLE_HINT}"
    _err().print(message, style="red", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(1)


UrlOption = Annotated[
    str | None,
    typer.Option(
        envvar="ORDERLENS_URL",
        show_envvar=True,
        help="The service's base URL (default: the one `orderlens serve` runs from this"
        " data directory, else http://127.0.0.1:8000).",
    ),
]
# Every command that calls the service sends a key the same way: the one given, else the
# local service's (what `orderlens serve` printed), so that read keys and write keys work.
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="API_KEY",
        help="X-API-Key to send. Default: the local service's key (API_KEY, else the one"
        " `orderlens serve` printed and keeps in ORDERLENS_DATA_DIR/api-key).",
    ),
]


def _key(api_key: str | None) -> str | None:
    """The key a client command sends: --api-key (API_KEY), else the local service's."""
    return api_key or _local_key()


@cli.command()
def ingest(
    kind: Annotated[UploadKind, typer.Argument(help="What the file holds.")],
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The CSV file.")
    ],
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    on_conflict: Annotated[
        OnConflict, typer.Option(help="Stored ids with other values: reject or update.")
    ] = OnConflict.REJECT,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            metavar="NAME=VALUE",
            help="Another query parameter of the upload, as POST /uploads takes it (docs/"
            "UPLOADS.md); repeat for several: -p max_rejected_share=0.5"
            " -p columns=id=LineNo,created_date=When -p date_format=%d/%m/%Y",
        ),
    ] = None,
) -> None:
    """Upload a CSV to a running service with a progress bar, then print its report."""
    from app import client

    base, source = _service_url(url)
    key = _key(api_key)
    if not key:
        _err().print("[red]No API key: pass --api-key or set API_KEY.[/red]")
        raise typer.Exit(2)
    params = {"on_conflict": on_conflict.value}
    for given in param or []:
        name, sep, value = given.partition("=")
        if not sep or not name.strip():
            _err().print(f"--param {given!r} is not NAME=VALUE", style="red", markup=False)
            raise typer.Exit(2)
        params[name.strip()] = value
    try:
        report = client.upload(
            base_url=base,
            api_key=key,
            kind=kind.value,
            path=file,
            params=params,
            console=_err(),
        )
    except client.ClientError as exc:
        _fail("upload", exc, base, source)
    _out().print(client.report_table(report, base))
    from app.uploads.schemas import WARN_REJECTED_SHARE

    if report.get("rejected_share", 0) >= WARN_REJECTED_SHARE:
        # Half or more of the file was rejected: said on stderr too, where it is seen.
        for warning in report["warnings"]:
            _err().print(f"warning: {warning}", style="bold red", markup=False, soft_wrap=True)


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
    api_key: ApiKeyOption = None,
    fx_mode: Annotated[
        FxMode | None,
        typer.Option(help="USD at the latest rate or at each order's date (default: FX_MODE)."),
    ] = None,
) -> None:
    """Download one of the CSV exports, streamed to a file or standard output."""
    from app import client

    base, source = _service_url(url)
    api_key = _key(api_key)
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
                console=_err(),
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
                    console=_err(),
                )
            partial.replace(out)
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
    except client.ClientError as exc:
        _fail("export", exc, base, source)
    _err().print(f"{out}: {written:,} bytes", markup=False, highlight=False, soft_wrap=True)


DatasetOption = Annotated[
    str | None,
    typer.Option(
        envvar="ORDERLENS_DATASET",
        help="The warehouse dataset (schema) the service's rows go to. Default: the"
        " service's instance id (GET /instance), so that services sharing a warehouse stay"
        " apart.",
    ),
]


@cli.command()
def sync(
    to: Annotated[
        str,
        typer.Option(
            "--to",
            envvar="ORDERLENS_SYNC_TO",
            help="duckdb:///relative/path, duckdb:////absolute/path, postgresql://…,"
            " file:///folder (Delta tables of Parquet) or bigquery://project/dataset.",
        ),
    ] = "duckdb:///warehouse/orderlens.duckdb",
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    consumer: Annotated[
        str | None,
        typer.Option(
            envvar="ORDERLENS_SYNC_CONSUMER",
            help="This sync's name in the service's log of reads (/syncs), by which"
            " /freshness says how old its copy is. Default: sync@ and this machine's name.",
        ),
    ] = None,
    dataset: DatasetOption = None,
    show_dataset: Annotated[
        bool,
        typer.Option(
            "--show-dataset",
            help="Print the dataset the sync would load into (for dbt's ORDERLENS_DATASET)"
            " and exit, syncing nothing.",
        ),
    ] = False,
) -> None:
    """Copy what changed in the change feeds into a warehouse (dlt: merge on keys)."""
    from app import client
    from app import sync as syncing

    base, _ = _service_url(url)
    api_key = _key(api_key)  # a read key is enough; the write key also tells a failure
    service = syncing.Service(base, api_key, consumer or syncing.default_consumer())
    if show_dataset:
        try:
            _out().print(syncing.resolve_dataset(service, to, dataset), markup=False)
        except syncing.SyncError as exc:
            _err().print(str(exc), style="red", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        return
    try:
        outcome = syncing.sync(service, to, dataset=dataset)
    except syncing.SyncStopped as exc:
        # Stopped on purpose: nothing to alert; the exit status of a process a signal ended.
        # Its working folder is gone; dlt's loader threads may still be inside a statement
        # (seconds, at 10M rows): not waited for. The destination discards what they had
        # not committed, as after a kill, and the next sync reads it again.
        _err().print(f"sync {exc}", style="yellow", markup=False, highlight=False)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + exc.signum)
    except syncing.SyncError as exc:
        _err().print(
            f"sync failed: {exc}", style="red", markup=False, highlight=False, soft_wrap=True
        )
        # Told to the service's alerts when the key may write (a read key may not: 403).
        client.tell_failure(
            base_url=base,
            api_key=api_key,
            subject=f"sync {service.consumer}",
            message=str(exc),
        )
        raise typer.Exit(1) from None
    _out().print(
        f"synced into {outcome.destination}: {outcome.loaded()}", markup=False, highlight=False
    )
    if outcome.unreported:
        _err().print(
            f"loaded, but the service was not told (its /syncs shows the reads as sent):"
            f" {outcome.unreported}",
            style="yellow",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


@cli.command()
def uploads(
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    limit: Annotated[
        int, typer.Option(min=1, max=1000, help="How many uploads to show, newest first.")
    ] = 20,
    kind: Annotated[UploadKind | None, typer.Option(help="Only uploads of this kind.")] = None,
) -> None:
    """Print the upload history (GET /uploads) as a table."""
    from app import client

    base, source = _service_url(url)
    params: dict[str, str | int] = {"limit": limit}
    if kind is not None:
        params["kind"] = kind.value
    try:
        page = client.get_json(
            base_url=base, path="/uploads", params=params, headers=client.key_header(_key(api_key))
        )
    except client.ClientError as exc:
        _fail("uploads", exc, base, source)
    out = _out()
    if not page["items"]:
        out.print("no uploads yet")
        return
    out.print(client.uploads_table(page["items"]))


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (PORT).")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, max=64, help="Worker processes (WORKERS).")
    ] = None,
    sample: Annotated[
        Path | None,
        typer.Option(
            help="Folder with products.csv and orders.csv to upload, through the API,"
            " when the database is empty."
        ),
    ] = None,
    forecast: Annotated[
        bool,
        typer.Option(
            "--forecast",
            help="Once the sample is loaded, start a forecast run, so that the forecast"
            " panel has something to show (`make demo`).",
        ),
    ] = False,
) -> None:
    """Apply migrations, then serve the API, the docs and the dashboard."""
    import asyncio

    import uvicorn

    from app import db, logs
    from app.config import LogFormat
    from app.main import create_app
    from app.security import api_key_file, resolve_api_key

    settings = _settings()
    logs.configure(settings)
    # uvicorn re-raises SIGTERM after its graceful shutdown; as SystemExit it lets the
    # embedded server be released instead of killing the process outright.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    bind_host, bind_port = host or settings.host, port or settings.port
    settings = settings.model_copy(update={"host": bind_host, "port": bind_port})
    processes = workers or settings.workers
    base = client_url(bind_host, bind_port)
    owner = _own_embedded(settings, base)
    database = _prepare()
    key_existed = api_key_file(settings).exists()
    api_key, generated = resolve_api_key(settings)
    _err().print(f"database ready, schema at {db.head_revision()}", highlight=False)
    # SPEC 1: an unset API_KEY is generated and printed (to the terminal, not the logs).
    how = "kept in" if key_existed else "generated, kept in"
    key_line = (
        f"API key (X-API-Key, {how} {api_key_file(settings)}):"
        f" [bold]{api_key.get_secret_value()}[/bold]"
        if generated
        else None
    )
    load = sample if sample is not None and asyncio.run(_is_empty(database)) else None
    threading.Thread(
        target=_greet,
        args=(base, api_key.get_secret_value(), load, key_line, forecast and load is not None),
        daemon=True,
    ).start()
    # A quiet start in a terminal: uvicorn's four lines of it (and of its end) say no
    # more than the lines _greet prints last; its warnings and errors still show.
    quiet = settings.log_format is LogFormat.TEXT
    # While it runs, client commands from the same data directory find it by this file.
    url_file = settings.orderlens_data_dir / URL_FILE
    url_file.parent.mkdir(parents=True, exist_ok=True)
    url_file.write_text(base + "\n", encoding="utf-8")
    try:
        if processes > 1:
            # Imported here: the single-process path needs none of it.
            from app import workers as multi

            multi.run(settings, database, host=bind_host, port=bind_port, workers=processes)
            return
        # Our middleware writes the access lines and our handler formats uvicorn's own
        # records (text or JSON), so uvicorn neither logs access nor configures logging.
        uvicorn.run(
            create_app(settings),
            host=bind_host,
            port=bind_port,
            log_level="warning" if quiet else "info",
            log_config=None,
            access_log=False,
        )
    finally:
        _forget_url(url_file, base)
        database.release()
        if owner is not None:
            owner.release()


def _own_embedded(settings: Settings, base: str) -> embedded.Claim | None:
    """The embedded server becomes this serve's for as long as it runs (None: DATABASE_URL
    is set). One that belongs to another live serve is refused, exit 1, naming it: two
    services on one data directory would share its server unknowingly, and its URL file
    and metrics folder too."""
    from app import db, embedded

    try:
        return db.own_embedded(settings, base)
    except embedded.Owned as exc:
        _err().print(str(exc), style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def _forget_url(url_file: Path, base: str) -> None:
    """Remove the URL file, unless another `orderlens serve` has written its own since."""
    with contextlib.suppress(OSError):
        if url_file.read_text(encoding="utf-8").strip() == base:
            url_file.unlink()


EMPTY = "SELECT NOT EXISTS (SELECT 1 FROM products) AND NOT EXISTS (SELECT 1 FROM orders)"


async def _is_empty(database: db.Database) -> bool:
    from sqlalchemy import text

    from app import db

    engine = db.create_engine(database.url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return bool(await conn.scalar(text(EMPTY)))
    finally:
        await engine.dispose()


def _greet(
    base: str, api_key: str, sample: Path | None, key_line: str | None, forecast: bool
) -> None:
    """Once the service answers: the sample, if any, uploaded (and a forecast run
    started on it); then, last, where the service is, its docs and its key (so that they
    are not buried in what came before). A forecast run says when it ends."""
    import httpx

    for _ in range(600):
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        return  # never ready: the service's own errors say why
    loaded = sample is not None and _load_sample(base, api_key, sample)
    run = _start_forecast(base, api_key) if forecast and loaded else None
    console = _err()
    console.print(f"Orderlens on [bold]{base}[/bold]   docs: [bold]{base}/docs[/bold]")
    if key_line is not None:
        console.print(key_line, soft_wrap=True)  # one line: the key copies whole
    if run is not None:
        _tell_forecast_end(base, api_key, run)


def _start_forecast(base: str, api_key: str) -> int | None:
    from app import client

    console = _err()
    try:
        run = client.post_json(
            base_url=base, path="/forecasts/runs", body={}, headers=client.key_header(api_key)
        )
    except client.ClientError as exc:
        console.print(f"[red]forecast not started: {exc}[/red]")
        return None
    console.print(
        f"forecast run {run['run_id']} started on {run['products']:,} products:"
        " the dashboard's forecast panel fills in when it ends"
    )
    return int(run["run_id"])


FORECAST_WAIT_SECONDS = 3600
FORECAST_POLL_SECONDS = 5  # each poll is an access line in the log


def _tell_forecast_end(base: str, api_key: str, run_id: int) -> None:
    """One line when the run ends: how long it took, or why it failed."""
    from app import client

    started = time.monotonic()
    while time.monotonic() - started < FORECAST_WAIT_SECONDS:
        time.sleep(FORECAST_POLL_SECONDS)
        try:
            run = client.get_json(
                base_url=base,
                path=f"/forecasts/runs/{run_id}",
                headers=client.key_header(api_key),
            )
        except client.ClientError:
            return  # the service is stopping, or gone: its own lines say why
        if run["status"] == "succeeded":
            _err().print(
                f"forecast run {run_id} done in {time.monotonic() - started:.0f} s:"
                f" {base}/#forecast"
            )
            return
        if run["status"] == "failed":
            why = (run.get("error") or {}).get("message", "see the log")
            _err().print(f"[red]forecast run {run_id} failed[/red]: {why}", markup=True)
            return


def _load_sample(base: str, api_key: str, folder: Path) -> bool:
    """Upload the sample through the same path as `ingest`; False if a file was not."""
    from app import client

    console = _err()
    for kind in ("products", "orders"):
        path = folder / f"{kind}.csv"
        try:
            report = client.upload(
                base_url=base, api_key=api_key, kind=kind, path=path, params={}, console=console
            )
        except client.ClientError as exc:
            console.print(f"[red]sample {kind} not loaded: {exc}[/red]")
            return False
        console.print(client.report_table(report, base))
    return True


fx_cli = typer.Typer(help="BRL→USD rates.", no_args_is_help=True)
cli.add_typer(fx_cli, name="fx")


@fx_cli.command("refresh")
def fx_refresh() -> None:
    """Fetch the current rate from the provider now and store it."""
    import asyncio

    from app import logs
    from app.fx import schemas as fx_schemas

    settings = _settings()
    logs.configure(settings)
    database = _prepare()
    try:
        rate = asyncio.run(_refresh(settings, database))
    finally:
        database.release()
    _out().print(
        f"1 BRL = {fx_schemas.rate_text(rate.rate)} USD  source {rate.source}"
        f"  as of {rate.as_of}  fetched {rate.fetched_at:%Y-%m-%d %H:%M:%S %Z}"
        + ("  [yellow](stale: the source did not answer)[/yellow]" if rate.stale else "")
    )
    if rate.stale:
        raise typer.Exit(1)


async def _refresh(settings: Settings, database: db.Database) -> Rate:
    import httpx

    from app import db
    from app.fx import service as fx_service

    engine = db.create_engine(database.url, pool_size=1)
    try:
        async with httpx.AsyncClient() as http:
            return await fx_service.build(settings, http=http, engine=engine).latest(refresh=True)
    finally:
        await engine.dispose()


@cli.command()
def forecast(
    horizon: Annotated[int, typer.Option(min=1, max=365, help="Days after data_until")] = 28,
    engine: Annotated[
        str | None, typer.Option(help="local or dask (default: FORECAST_ENGINE)")
    ] = None,
) -> None:
    """Run a forecast in this process against the configured database (the API's lock:
    one run at a time), with a progress bar; print the accuracy table. Exit 1 if it fails,
    2 if another run is in progress."""
    import asyncio

    from app import logs

    settings = _settings()
    logs.configure(settings)
    chosen = engine or settings.forecast_engine.value
    if chosen not in {"local", "dask"}:
        raise typer.BadParameter("--engine is local or dask")
    if chosen == "dask" and not settings.dask_scheduler_address:
        raise typer.BadParameter("--engine dask needs DASK_SCHEDULER_ADDRESS")
    database = _prepare()
    try:
        code = asyncio.run(_forecast(settings, database, horizon=horizon, engine=chosen))
    finally:
        database.release()
    if code:
        raise typer.Exit(code)


async def _forecast(settings: Settings, database: db.Database, *, horizon: int, engine: str) -> int:
    import asyncio

    from rich.progress import BarColumn, Progress, TimeElapsedColumn
    from rich.table import Table

    from app.forecasting import runs
    from app.forecasting.options import Options

    try:
        handle = await runs.start(url=database.url, horizon=horizon, engine_name=engine)
    except runs.RunInProgress as exc:
        _err().print(f"[red]{exc.message}[/red] running: {exc.details['run_id']}")
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
    with Progress(*columns, console=_err()) as bar:
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
        _err().print(f"[red]forecast run {handle.run_id} failed[/red]: {error.get('message')}")
        return 1
    if handle.left_out is not None:
        for line in left_out_lines(handle.left_out):
            _err().print(f"[yellow]{line}[/yellow]")
    table = Table(title=f"forecast run {handle.run_id}: {len(result.products)} products")
    for name in ACCURACY_COLUMNS:
        table.add_column(name, justify="left" if name in {"level", "model", "scope"} else "right")
    for row in [*result.level_accuracy, *result.accuracy]:
        table.add_row(*(_cell(row.get(c)) for c in ACCURACY_COLUMNS))
    _out().print(table)
    for line in accuracy_in_words([*result.level_accuracy, *result.accuracy], horizon):
        _out().print(line, highlight=False)
    return 0


LEVEL_WORDS = {"total": "the whole shop", "category": "categories", "product": "products"}


def accuracy_in_words(rows: list[dict[str, Any]], horizon: int) -> list[str]:
    """Per level, the served forecast's backtest error against seasonal naive's, in one
    sentence (the table above holds the figures)."""
    from app.forecasting.engine import MAX_WINDOWS

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


# The accuracy table `orderlens forecast` prints: per level, as `/forecasts/accuracy`.
ACCURACY_COLUMNS = (
    "level", "model", "scope", "series", "mae", "rmsse", "mase", "bias", "coverage_80",
    "coverage_95", "coverage_80_sales_days",
)  # fmt: skip


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


def main() -> None:
    cli()


if __name__ == "__main__":
    main()


# --- the pipeline (issue 28) ----------------------------------------------------------------

pipeline_cli = typer.Typer(
    help="The pipeline: FX refresh → sync → dbt build → forecast run → freshness check"
    " (Prefect 3).",
    no_args_is_help=True,
)
cli.add_typer(pipeline_cli, name="pipeline")

# The pipeline's name in the service's log of feed reads, by which /freshness checks it.
PIPELINE_CONSUMER = "orderlens-pipeline"
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

    base, _ = _service_url(url)
    return Target(base, _key(api_key), to, PIPELINE_CONSUMER, horizon, dataset)


@pipeline_cli.command("run")
def pipeline_run(
    steps: StepsOption = "fx,sync,dbt,forecast,freshness",
    url: UrlOption = None,
    to: ToOption = "duckdb:///warehouse/orderlens.duckdb",
    api_key: KeyOption = None,
    horizon: HorizonOption = 28,
    dataset: DatasetOption = None,
) -> None:
    """Run the pipeline once; print each step's result. Exit 1 if a step failed (it is
    told to the service's /alerts, and the steps after it do not run)."""
    chosen = _steps(steps)
    from app import pipeline

    outcome = pipeline.run(_target(url, to, api_key, horizon, dataset), chosen)
    for step, result in outcome.results.items():
        failed = result.startswith("failed: ")
        text = result.removeprefix("failed: ")
        _out().print(
            f"{step:<10} {'failed' if failed else 'ok':<7} {text}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if outcome.failed is not None:
        _err().print(
            f"pipeline failed at {outcome.failed}", style="red", markup=False, highlight=False
        )
        raise typer.Exit(1)


@pipeline_cli.command("serve")
def pipeline_serve(
    cron: Annotated[
        str, typer.Option(help="When to run, as cron: '0 * * * *' is every hour, on the hour.")
    ] = "0 * * * *",
    steps: StepsOption = "fx,sync,dbt,forecast,freshness",
    url: UrlOption = None,
    to: ToOption = "duckdb:///warehouse/orderlens.duckdb",
    api_key: KeyOption = None,
    horizon: HorizonOption = 28,
    dataset: DatasetOption = None,
) -> None:
    """Run the pipeline on a schedule until stopped (Ctrl-C). With PREFECT_API_URL set,
    that Prefect server schedules the runs and shows them in its UI; without, this
    process runs them at the times the cron names (UTC)."""
    chosen = _steps(steps)
    from app import pipeline

    if not pipeline.valid_cron(cron):
        raise typer.BadParameter(f"{cron!r} is not a cron expression", param_hint="--cron")

    pipeline.serve(_target(url, to, api_key, horizon, dataset), chosen, cron)
