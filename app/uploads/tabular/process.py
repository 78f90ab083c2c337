"""The service's side of the reading process (child.py): start it on the spooled file,
stream its CSV back, and turn whatever ended it into the upload's answer.

- A refusal it sends (`E`) is raised as the upload error it names (`undecodable` 422,
  `too_large` 413).
- Out of its address space (PARSER_MAX_MEMORY_BYTES: calamine aborts, Python and Arrow
  exit with child.MEMORY_EXIT), past its CPU seconds (PARSER_MAX_CPU_SECONDS: SIGXCPU,
  then SIGKILL), or past its wall seconds (PARSER_MAX_SECONDS, counted while the upload
  waits for it, not while the database takes its rows: then it is killed): 413
  `too_large`, naming the setting.
- Any other end without its last frame (a crash, an abort, a signal): 422
  `unreadable_file`; its standard error goes to the log.

The process is killed and reaped whenever the upload stops reading it, for any reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncGenerator, Collection, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

from app.errors import ServiceUnavailable
from app.uploads.errors import TooLarge, UnreadableFile, UploadError
from app.uploads.tabular import TabularLimits
from app.uploads.tabular.child import DATA, END, ERROR, HEADER, MEMORY_EXIT, META

log = logging.getLogger(__name__)

# Where `app` is imported from: the child runs the service's own code, wherever it lies.
_ROOT = str(Path(__file__).resolve().parents[3])
# How much of the process's output the service buffers before it stops reading the pipe.
STREAM_LIMIT = 4 << 20
# The interpreter and module the reading process runs (tests put stand-ins in their place).
PYTHON = sys.executable
CHILD = "app.uploads.tabular.child"
# What standard error keeps of a process for the log (its last bytes).
STDERR_BYTES = 64 << 10
# Signs on standard error that a native reader ran out of its address space.
_OUT_OF_MEMORY = (b"memory allocation of", b"MemoryError", b"bad_alloc", b"out of memory")


@dataclass
class Reading:
    """One file being read by its process: its meta, then its CSV buffers; `close()`
    stops the process, whether the buffers were read, begun or never asked for."""

    line_offset: int
    warnings: list[str]
    chunks: AsyncGenerator[bytes, None]
    _child: _Child

    async def close(self) -> None:
        await self.chunks.aclose()
        await self._child.stop()


@dataclass
class _Child:
    proc: asyncio.subprocess.Process
    # The process itself, whatever reuses its pid once it is reaped; -1 when it had ended
    # and been reaped before the pidfd could be opened (nothing left to signal).
    pidfd: int
    limits: TabularLimits
    stderr: bytearray = field(default_factory=bytearray)
    waited: float = 0.0  # seconds the upload spent waiting for it
    killed_for_time: bool = False
    drain: asyncio.Task[None] | None = None
    stopped: bool = False

    async def frame(self) -> tuple[bytes, bytes]:
        """The next frame, counting the wait against the wall limit."""
        assert self.proc.stdout is not None
        left = self.limits.max_seconds - self.waited
        started = time.monotonic()
        try:
            async with asyncio.timeout(max(left, 0.0)):
                kind, size = HEADER.unpack(await self.proc.stdout.readexactly(HEADER.size))
                payload = await self.proc.stdout.readexactly(size) if size else b""
        except TimeoutError:
            self.killed_for_time = True
            raise await self.ended() from None
        except asyncio.IncompleteReadError:
            raise await self.ended() from None
        finally:
            self.waited += time.monotonic() - started
        return kind, payload

    async def ended(self) -> UploadError:
        """Why the process ended without its last frame, as the upload's error."""
        await self.stop()
        code = self.proc.returncode
        tail = bytes(self.stderr[-4096:])
        if self.killed_for_time:
            return _too_slow("took longer than", self.limits.max_seconds, "PARSER_MAX_SECONDS")
        if code == -signal.SIGXCPU:
            return _too_slow(
                "took more CPU time than", self.limits.max_cpu_seconds, "PARSER_MAX_CPU_SECONDS"
            )
        if code == MEMORY_EXIT or any(sign in tail for sign in _OUT_OF_MEMORY):
            return TooLarge(
                self.limits.max_memory_bytes,
                what="Reading the file needs more memory than",
                setting="PARSER_MAX_MEMORY_BYTES",
            )
        how = f"signal {_signal_name(-code)}" if code and code < 0 else f"status {code}"
        log.error("the file's reader ended by %s: %s", how, tail.decode("utf-8", "replace"))
        return UnreadableFile(
            f"The file could not be read: its reader stopped ({how}). It may be damaged;"
            " save it again, or as CSV.",
            details={"reader_exit": how},
        )

    async def stop(self) -> None:
        """Kill the process if it runs, reap it, and keep the end of its standard error.

        By its pidfd, not `Process.kill()`: that polls first, which reaps a process that
        has just exited behind asyncio's child watcher (then asyncio reports exit 255)."""
        if self.stopped:
            return
        self.stopped = True
        pidfd, self.pidfd = self.pidfd, -1
        if pidfd >= 0:
            try:
                if self.proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            finally:
                os.close(pidfd)  # the signal is sent: the watcher reaps it, even if cancelled
        await self.proc.wait()
        if self.drain is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.drain, 5)

    async def keep_stderr(self) -> None:
        assert self.proc.stderr is not None
        while chunk := await self.proc.stderr.read(65536):
            self.stderr += chunk
            del self.stderr[:-STDERR_BYTES]


# What the reading process may see of the service's environment: enough to run Python,
# nothing else. A reader that a file takes over must not find the database's URL, the
# API keys or the FX key in its environment.
PASSED_ENVIRONMENT = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "VIRTUAL_ENV")


def reader_environment() -> dict[str, str]:
    env = {name: os.environ[name] for name in PASSED_ENVIRONMENT if name in os.environ}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (_ROOT, os.environ.get("PYTHONPATH"))))
    # One thread for numpy's BLAS, which pyarrow imports: its per-thread buffers would
    # take address space for nothing.
    env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = "1"
    return env


async def read_file(
    kind: str,
    spool: IO[bytes],
    limits: TabularLimits,
    *,
    sheet: str | None = None,
    required: Collection[str] = (),
) -> Reading:
    """Start the reading process on `spool` (`kind` "xlsx" or "parquet") and wait for
    the table's meta; the rows follow in `Reading.chunks`, which stops the process when
    closed."""
    spool.flush()
    spool.seek(0)
    request = {
        "format": kind,
        "sheet": sheet,
        "required": sorted(required),
        "limits": asdict(limits),
    }
    child = await _start(request, spool, limits)
    child.drain = asyncio.create_task(child.keep_stderr())
    try:
        kind_, payload = await child.frame()
        if kind_ == ERROR:
            raise _refusal(payload)
        if kind_ != META:
            raise await child.ended()
        meta = json.loads(payload)
    except BaseException:
        await child.stop()
        raise
    return Reading(meta["line_offset"], meta["warnings"], _rows(child), child)


async def _start(request: Mapping[str, object], spool: IO[bytes], limits: TabularLimits) -> _Child:
    """The reading process, started; 503 `unavailable` when the machine cannot start one
    (no process or file left to spare): the service's trouble, not the file's."""
    try:
        proc = await asyncio.create_subprocess_exec(
            PYTHON,
            "-m",
            CHILD,
            json.dumps(request),
            stdin=spool.fileno(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=reader_environment(),
            limit=STREAM_LIMIT,
        )
    except OSError as exc:
        failure: OSError = exc
    else:
        try:
            return _Child(proc, os.pidfd_open(proc.pid), limits)
        except ProcessLookupError:
            # It ended (a file refused at once) and the child watcher reaped it before the
            # pidfd was opened: its output is in the pipes; there is nothing to signal.
            return _Child(proc, -1, limits)
        except OSError as exc:
            failure = exc
            proc.kill()  # still running: no poll can reap it behind the watcher
            await proc.wait()
    # Raised here, not in an `except`: the OSError must not ride along as its context,
    # where the error handlers would take it for the database gone.
    log.error("the file's reader could not be started: %s", failure)
    raise ServiceUnavailable(
        "The file's reader could not be started; try again shortly.",
        headers={"Retry-After": "5"},
    )


async def _rows(child: _Child) -> AsyncGenerator[bytes, None]:
    try:
        while True:
            kind, payload = await child.frame()
            if kind == DATA:
                yield payload
            elif kind == END:
                await child.proc.wait()
                peaks = json.loads(payload) if payload else {}
                log.info(
                    "file read by its own process: %.2f s waited, peak memory %d MB"
                    " (address space %d MB)",
                    child.waited,
                    peaks.get("VmHWM", 0) >> 20,
                    peaks.get("VmPeak", 0) >> 20,
                )
                return
            elif kind == ERROR:
                raise _refusal(payload)
            else:
                raise await child.ended()
    finally:
        await child.stop()


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _too_slow(what: str, seconds: float, setting: str) -> UploadError:
    return UploadError(
        f"Reading the file {what} {seconds:g} seconds ({setting}).",
        code=TooLarge.code,
        status_code=TooLarge.status_code,
        details={"max_seconds": seconds},
    )


def _refusal(payload: bytes) -> UploadError:
    refusal = json.loads(payload)
    return UploadError(
        refusal["message"],
        code=refusal["code"],
        status_code=refusal["status"],
        details=refusal["details"],
    )
