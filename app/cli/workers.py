"""`orderlens serve --workers N`: N uvicorn worker processes that act as one service.

The parent (uvicorn's own process manager) has started the database and migrated it,
and hands each worker what it needs through the environment: the database's URL (the
embedded server is started once, by the parent), the bound address, and a folder where
prometheus_client's multiprocess mode keeps every worker's metrics so that `/metrics`
sums them. The FX rate and uploads are shared through PostgreSQL (an advisory lock
each), never through process memory.

Each worker listens on a socket of its own (`REUSE_PORT`, on Linux): the kernel spreads
new connections evenly over the workers' sockets. On one socket shared by all, whichever
worker is awake first accepts every connection waiting (uvloop accepts until none is
left), so 32 clients connecting at once met 26 / 2 / 2 / 2 connections per worker, and
the 26 waited for one process while the others served two each (issue 25,
docs/decisions/2026-12-07-a-socket-per-worker.md).

There, each worker is also a session of its own (`setsid`), as every PostgreSQL backend
is: Linux's autogroup scheduling shares the cores between sessions, so four workers in
one session got one share among the backends they wait on (issue 25,
docs/decisions/2026-12-07-a-session-per-worker.md). Out of the parent's process group, a
worker is no longer reached by a signal to that group (a terminal's Ctrl-C): the parent
passes its own stop on, and a worker whose parent dies is sent SIGTERM by the kernel.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from app import db
from app.config import Settings

log = logging.getLogger(__name__)

# Read by prometheus_client when it is imported, so it must be set before a worker starts.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
ASGI_APP = "app.main:app"
# Whether this platform spreads connections over sockets sharing a port (macOS and the
# BSDs have SO_REUSEPORT too, but do not balance connections over the sockets).
SPREADS_CONNECTIONS = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")
PR_SET_PDEATHSIG = 1  # linux/prctl.h


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
    config = uvicorn.Config(
        ASGI_APP,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        log_config=None,
        access_log=False,
    )
    if not (settings.reuse_port and SPREADS_CONNECTIONS):
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    with reserved(host, port):
        log.info("listening on %s:%s, a socket per worker", host, port)
        own = OwnSocket(host, port, config.backlog)
        Multiprocess(config, sockets=[cast(socket.socket, own)]).run()


def _tcp_socket(host: str, *, share_port: bool) -> socket.socket:
    sock = socket.socket(
        socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
    )
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if share_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    return sock


def _bound(sock: socket.socket, host: str, port: int) -> socket.socket:
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        log.error("%s", exc)
        sys.exit(STARTUP_FAILURE)
    return sock


@contextlib.contextmanager
def reserved(host: str, port: int) -> Iterator[None]:
    """The port bound, not listened on, by the parent while it runs, so that no other
    program takes it from the workers (a socket that does not listen is handed no
    connection). A port in use fails the start at once, as uvicorn's own bind would:
    first bound without SO_REUSEPORT, which any listening socket refuses, so that another
    service sharing its port among its workers is never joined by this one's."""
    _bound(_tcp_socket(host, share_port=False), host, port).close()
    sock = _bound(_tcp_socket(host, share_port=True), host, port)
    try:
        yield
    finally:
        sock.close()


def listen_own(host: str, port: int, backlog: int) -> socket.socket:
    """A listening socket of this worker's own on the service's port."""
    sock = _tcp_socket(host, share_port=True)
    sock.bind((host, port))
    sock.listen(backlog)
    return sock


def own_session(parent: int) -> None:
    """This worker a session of its own, sent SIGTERM when `parent` (the process that
    started it) dies. Linux only."""
    os.setsid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent:  # it died before the request: nothing will send it
        os.kill(os.getpid(), signal.SIGTERM)


def start_worker(parent: int, host: str, port: int, backlog: int) -> socket.socket:
    """What a worker runs first, as it unpickles its socket: its own session, then its
    own listening socket."""
    own_session(parent)
    return listen_own(host, port, backlog)


class OwnSocket:
    """Stands in for a socket in the parent: the supervisor pickles its arguments into
    each worker it starts (spawn), and this one unpickles there as `start_worker`'s
    socket. A worker that dies takes its socket with it; its replacement opens another."""

    def __init__(self, host: str, port: int, backlog: int) -> None:
        self.host, self.port, self.backlog = host, port, backlog

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled in the parent, as it starts the worker: os.getpid() is the parent's.
        return (start_worker, (os.getpid(), self.host, self.port, self.backlog))
