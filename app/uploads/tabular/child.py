"""The reading process: `python -m app.uploads.tabular.child REQUEST` with the spooled
file as its standard input, started by `process.py` for one upload.

It limits itself first (address space, CPU seconds, no core file), then reads the file
and writes frames to standard output: a kind byte, a 4-byte big-endian length, the
payload. `M` the table's meta (JSON: `line_offset`, `warnings`), `D` a buffer of CSV,
`Z` the end; or `E` the refusal (JSON: `code`, `status`, `message`, `details`). A
process that ends without `Z` or `E` died: `process.py` says why, from its exit and
standard error.
"""

from __future__ import annotations

import json
import os
import resource
import struct
import sys
from typing import IO, Any

from app.uploads.tabular import Refused, Table, TabularLimits

HEADER = struct.Struct(">cI")
META, DATA, END, ERROR = b"M", b"D", b"Z", b"E"
# The exit status of a process that ran out of its address space in Python or Arrow
# (calamine, in Rust, aborts instead: SIGABRT, "memory allocation of N bytes failed").
MEMORY_EXIT = 75
# The address space the readers need before any file is read (pyarrow's import: 300 MB
# failed, 512 MB read a million rows): a limit below it would fail every file.
MIN_MEMORY_BYTES = 512 << 20


def limit_self(limits: TabularLimits) -> None:
    """Hard limits on this process: what a native reader may allocate, the CPU time it
    may take (SIGXCPU at the limit, SIGKILL a second later), and no core file."""
    memory = max(limits.max_memory_bytes, MIN_MEMORY_BYTES)
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = max(1, int(limits.max_cpu_seconds))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def send(out: IO[bytes], kind: bytes, payload: bytes) -> None:
    out.write(HEADER.pack(kind, len(payload)))
    out.write(payload)


def peaks() -> dict[str, int]:
    """This process's peak address space and resident memory, in bytes (for the log)."""
    found = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmPeak", "VmHWM"):
                found[name] = int(value.split()[0]) * 1024
    return found


def read(request: dict[str, Any], spool: IO[bytes], limits: TabularLimits) -> Table:
    if request["format"] == "xlsx":
        from app.uploads.tabular import xlsx

        return xlsx.open_sheet(spool, request.get("sheet"), limits)
    from app.uploads.tabular import parquet

    return parquet.open_parquet(spool, limits, frozenset(request["required"]))


def main() -> int:
    request = json.loads(sys.argv[1])
    limits = TabularLimits(**request["limits"])
    limit_self(limits)
    out = sys.stdout.buffer
    spool = os.fdopen(0, "rb", closefd=False)
    try:
        table = read(request, spool, limits)
        meta = {"line_offset": table.line_offset, "warnings": table.warnings}
        send(out, META, json.dumps(meta).encode())
        for chunk in table.rows:
            send(out, DATA, chunk)
        send(out, END, json.dumps(peaks()).encode())
    except Refused as exc:
        refusal = {
            "code": exc.code,
            "status": exc.status,
            "message": exc.message,
            "details": exc.details,
        }
        send(out, ERROR, json.dumps(refusal).encode())
    except MemoryError:
        # Python's own allocations, or Arrow's (ArrowMemoryError): the limit was reached.
        # The service answers it from the exit status; nothing more can be allocated here.
        os._exit(MEMORY_EXIT)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
