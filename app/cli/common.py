"""What the commands share: the consoles, the settings, the database made ready, the
choices as the service spells them, and how a client command finds the service and its
key."""

from __future__ import annotations

import contextlib
from functools import cache
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

# The choices the commands take, as the service spells them (standard library only).
from app.choices import ForecastEngine as ForecastEngine
from app.choices import FxMode as FxMode
from app.choices import OnConflict as OnConflict
from app.choices import UploadKind as UploadKind

if TYPE_CHECKING:
    from rich.console import Console

    from app import db
    from app.config import Settings

DEFAULT_URL = "http://127.0.0.1:8000"
URL_FILE = "url"
UNREACHABLE_HINT = "Is the service running? If it runs elsewhere, pass --url or set ORDERLENS_URL."
# Where `orderlens sync` and the pipeline load unless told otherwise (--to).
DEFAULT_WAREHOUSE = "duckdb:///warehouse/orderlens.duckdb"


@cache
def err() -> Console:
    """Standard error, for progress, messages and failures."""
    from rich.console import Console

    return Console(stderr=True)


def out() -> Console:
    from rich.console import Console

    return Console()


def settings() -> Settings:
    from app.config import get_settings

    return get_settings()


def prepare() -> db.Database:
    """Find (or start) the database, wait for it and bring its schema to the head."""
    from app import db

    database = db.open_database(settings())
    db.wait_for_database(database.url)
    try:
        # Before migrating: on an old server the migrations would fail half-way, obscurely.
        db.require_supported_server(database.url)
        db.require_known_timezone(database.url, settings().business_timezone)
    except (db.UnsupportedServer, db.UnknownTimezone) as exc:
        database.release()
        raise SystemExit(str(exc)) from None  # the sentence on stderr, exit status 1
    db.upgrade(database.url)
    return database


def client_url(host: str, port: int) -> str:
    """The URL a client on this machine reaches a service bound to `host`:`port` at."""
    if host in {"0.0.0.0", ""}:  # noqa: S104 - every IPv4 address, so loopback too
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def service_url(url: str | None) -> tuple[str, str]:
    """The service a client command talks to, and where that URL came from: --url or
    ORDERLENS_URL; else the URL `orderlens serve` keeps in the data directory while it
    runs; else http://HOST:PORT (http://127.0.0.1:8000 by default)."""
    if url:
        return url, "--url or ORDERLENS_URL"
    config = settings()
    path = config.orderlens_data_dir / URL_FILE
    with contextlib.suppress(OSError, UnicodeDecodeError):
        if written := path.read_text(encoding="utf-8").strip():
            return written, f"from {path}, written by `orderlens serve`"
    if (config.host, config.port) == ("127.0.0.1", 8000):
        return DEFAULT_URL, "the default"
    return client_url(config.host, config.port), "from HOST and PORT"


def _local_key() -> str | None:
    from app.security import api_key_file

    config = settings()
    if config.api_key is not None:
        return config.api_key.get_secret_value()
    path = api_key_file(config)
    return path.read_text().strip() if path.exists() else None


def key(api_key: str | None) -> str | None:
    """The key a client command sends: --api-key (API_KEY), else the local service's."""
    return api_key or _local_key()


def fail(what: str, exc: Exception, base: str, source: str) -> NoReturn:
    """One red line, as is (the service's message is not markup), then exit 1. When
    nothing answered, the line names the URL tried, where it came from, and the way out."""
    from app.cli import client

    message = f"{what} failed: {exc}"
    if isinstance(exc, client.ClientError) and exc.unreachable:
        message = f"{what} failed: could not reach {base} ({source}): {exc}. {UNREACHABLE_HINT}"
    err().print(message, style="red", markup=False, highlight=False, soft_wrap=True)
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
DatasetOption = Annotated[
    str | None,
    typer.Option(
        envvar="ORDERLENS_DATASET",
        help="The warehouse dataset (schema) the service's rows go to. Default: the"
        " service's instance id (GET /instance), so that services sharing a warehouse stay"
        " apart.",
    ),
]
