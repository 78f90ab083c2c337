"""How fast the crafted workbooks of issue 25 are refused, through the reading process
as an upload runs it (spawn, measure, answer), five times each.

    .venv/bin/python benchmarks/ingest/refusals.py
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.uploads.errors import UploadError
from app.uploads.tabular import TabularLimits, process
from tests.uploads.files import xlsx_shared_string_bomb, xlsx_with_row

ROWS: list[list[Any]] = [["id", "name", "category", "price"], [1, "Shirt", "Shirts", 10.5]]
FILES = {
    "one far cell, xfd1048576": xlsx_with_row(
        ROWS, b'<row r="1048576"><c r="xfd1048576"><v>1</v></c></row>'
    ),
    "one 20 MB shared string in 100 cells": xlsx_shared_string_bomb(
        ROWS, length=20 << 20, cells=100
    ),
    "the same behind 50 empty items": xlsx_shared_string_bomb(
        ROWS, length=20 << 20, cells=100, empty_items=50
    ),
}


async def main() -> None:
    for name, content in FILES.items():
        seconds, codes = [], set()
        for _ in range(5):
            with tempfile.TemporaryFile() as spool:
                spool.write(content)
                started = time.perf_counter()
                try:
                    reading = await process.read_file("xlsx", spool, TabularLimits())
                    await reading.close()
                    codes.add("read")
                except UploadError as exc:
                    codes.add(exc.code)
                seconds.append(time.perf_counter() - started)
        shown = ", ".join(f"{s:.3f}" for s in seconds)
        print(f"{name} ({len(content):,} bytes): {sorted(codes)} in {shown} s")


if __name__ == "__main__":
    asyncio.run(main())
