"""`orderlens serve` (in one process or several workers) and `orderlens migrate`; once the
service answers, the sample it loads, the forecast it starts and where it is."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.cli import common

if TYPE_CHECKING:
    from app import db
    from app.config import Settings
    from app.db import embedded


def migrate() -> None:
    """Apply every pending migration to the database."""
    from app import db, logs

    logs.configure(common.settings())
    common.prepare().release()
    common.err().print(f"[green]schema at {db.head_revision()}[/green]")


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

    from app import db, logs

    settings = common.settings()
    logs.configure(settings)
    # uvicorn re-raises SIGTERM after its graceful shutdown; as SystemExit it lets the
    # embedded server be released instead of killing the process outright.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    bind_host, bind_port = host or settings.host, port or settings.port
    settings = settings.model_copy(update={"host": bind_host, "port": bind_port})
    base = common.client_url(bind_host, bind_port)
    owner = _own_embedded(settings, base)
    database = common.prepare()
    api_key, key_line = _api_key(settings)
    common.err().print(f"database ready, schema at {db.head_revision()}", highlight=False)
    load = sample if sample is not None and asyncio.run(_is_empty(database)) else None
    threading.Thread(
        target=_greet,
        args=(base, api_key, load, key_line, forecast and load is not None),
        daemon=True,
    ).start()
    # While it runs, client commands from the same data directory find it by this file.
    url_file = settings.orderlens_data_dir / common.URL_FILE
    url_file.parent.mkdir(parents=True, exist_ok=True)
    url_file.write_text(base + "\n", encoding="utf-8")
    try:
        _run(settings, database, workers or settings.workers)
    finally:
        _forget_url(url_file, base)
        database.release()
        if owner is not None:
            owner.release()


def _api_key(settings: Settings) -> tuple[str, str | None]:
    """The service's key, and the line that shows it if it was generated (SPEC 1: an
    unset API_KEY is generated and printed, to the terminal, not the logs)."""
    from app.security import api_key_file, resolve_api_key

    existed = api_key_file(settings).exists()
    api_key, generated = resolve_api_key(settings)
    how = "kept in" if existed else "generated, kept in"
    key_line = (
        f"API key (X-API-Key, {how} {api_key_file(settings)}):"
        f" [bold]{api_key.get_secret_value()}[/bold]"
        if generated
        else None
    )
    return api_key.get_secret_value(), key_line


def _run(settings: Settings, database: db.Database, processes: int) -> None:
    """Serve on the settings' host and port until stopped, in this process or in
    `processes` workers."""
    import uvicorn

    from app.config import LogFormat
    from app.main import create_app

    if processes > 1:
        # Imported here: the single-process path needs none of it.
        from app.cli import workers as multi

        multi.run(settings, database, host=settings.host, port=settings.port, workers=processes)
        return
    # A quiet start in a terminal: uvicorn's four lines of it (and of its end) say no
    # more than the lines _greet prints last; its warnings and errors still show.
    quiet = settings.log_format is LogFormat.TEXT
    # Our middleware writes the access lines and our handler formats uvicorn's own
    # records (text or JSON), so uvicorn neither logs access nor configures logging.
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning" if quiet else "info",
        log_config=None,
        access_log=False,
    )


def _own_embedded(settings: Settings, base: str) -> embedded.Claim | None:
    """The embedded server becomes this serve's for as long as it runs (None: DATABASE_URL
    is set). One that belongs to another live serve is refused, exit 1, naming it: two
    services on one data directory would share its server unknowingly, and its URL file
    and metrics folder too."""
    from app import db
    from app.db import embedded

    try:
        return db.own_embedded(settings, base)
    except embedded.Owned as exc:
        common.err().print(str(exc), style="red", markup=False, highlight=False, soft_wrap=True)
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
    loaded = sample is not None and load_sample(base, api_key, sample)
    run = _start_forecast(base, api_key) if forecast and loaded else None
    console = common.err()
    console.print(f"Orderlens on [bold]{base}[/bold]   docs: [bold]{base}/docs[/bold]")
    if key_line is not None:
        console.print(key_line, soft_wrap=True)  # one line: the key copies whole
    if run is not None:
        _tell_forecast_end(base, api_key, run)


def _start_forecast(base: str, api_key: str) -> int | None:
    from app.cli import client

    console = common.err()
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
    from app.cli import client

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
            common.err().print(
                f"forecast run {run_id} done in {time.monotonic() - started:.0f} s:"
                f" {base}/#forecast"
            )
            return
        if run["status"] == "failed":
            why = (run.get("error") or {}).get("message", "see the log")
            common.err().print(f"[red]forecast run {run_id} failed[/red]: {why}", markup=True)
            return


def load_sample(base: str, api_key: str, folder: Path) -> bool:
    """Upload the sample through the same path as `ingest`; False if a file was not."""
    from app.cli import client

    console = common.err()
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
