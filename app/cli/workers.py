"""`orderlens serve --workers N`: N uvicorn worker processes that act as one service.

The parent (uvicorn's own process manager) binds the port, has started the database
and migrated it, and hands each worker what it needs through the environment: the
database's URL (the embedded server is started once, by the parent), the bound address,
and a folder where prometheus_client's multiprocess mode keeps every worker's metrics so
that `/metrics` sums them. The FX rate and uploads are shared through PostgreSQL (an
advisory lock each), never through process memory.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import uvicorn

from app import db
from app.config import Settings

# Read by prometheus_client when it is imported, so it must be set before a worker starts.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
ASGI_APP = "app.main:app"


def metrics_dir(settings: Settings) -> Path:
    return settings.orderlens_data_dir.expanduser().resolve() / "prometheus"


def prepare_environment(settings: Settings, database: db.Database, host: str, port: int) -> None:
    """Set what every worker reads at start; the metrics folder is emptied, so counts
    start at zero with the service (files of workers of an earlier run would add up)."""
    folder = metrics_dir(settings)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(folder)
    # Workers join the server the parent started instead of each starting their own.
    os.environ["DATABASE_URL"] = database.url.render_as_string(hide_password=False)
    os.environ["HOST"] = host
    os.environ["PORT"] = str(port)


def run(settings: Settings, database: db.Database, *, host: str, port: int, workers: int) -> None:
    """Serve with `workers` processes until a signal stops them (blocking)."""
    prepare_environment(settings, database, host, port)
    # Our middleware writes the access lines and app.logs formats uvicorn's records.
    uvicorn.run(
        ASGI_APP,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        log_config=None,
        access_log=False,
    )
