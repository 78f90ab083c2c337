"""The command line's HTTP client: uploads with a progress bar, reports as tables."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import IO, Any, cast

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table

UPLOAD_TIMEOUT = httpx.Timeout(connect=10.0, read=3600.0, write=600.0, pool=10.0)


class _ProgressFile:
    """A file that advances a progress bar as httpx reads it."""

    def __init__(self, fh: IO[bytes], progress: Progress, task: Any) -> None:
        self._fh, self._progress, self._task = fh, progress, task

    def read(self, size: int = -1) -> bytes:
        chunk = self._fh.read(size)
        if chunk:
            self._progress.advance(self._task, len(chunk))
        else:
            self._progress.update(self._task, description="validating and loading")
        return chunk

    def fileno(self) -> int:
        return self._fh.fileno()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()


class ClientError(Exception):
    """The service answered with an error (its `{"error": …}` body) or not at all."""

    def __init__(self, message: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.body = body


def upload(
    *,
    base_url: str,
    api_key: str,
    kind: str,
    path: Path,
    on_conflict: str = "reject",
    console: Console,
) -> dict[str, Any]:
    """POST the file to /uploads/{kind}, showing bytes sent, then the wait for the report."""
    size = path.stat().st_size
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
    )
    started = time.perf_counter()
    with (
        Progress(*columns, console=console, transient=True) as progress,
        path.open("rb") as fh,
    ):
        task = progress.add_task(f"uploading {path.name}", total=size)
        reader = _ProgressFile(fh, progress, task)
        try:
            response = httpx.post(
                f"{base_url.rstrip('/')}/uploads/{kind}",
                params={"on_conflict": on_conflict},
                headers={"X-API-Key": api_key},
                files={"file": (path.name, cast(IO[bytes], reader), "text/csv")},
                timeout=UPLOAD_TIMEOUT,
            )
        except httpx.HTTPError as exc:
            raise ClientError(f"could not reach {base_url}: {exc}") from exc
    body = _json(response)
    if response.status_code >= 400:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        raise ClientError(
            f"{response.status_code} {error.get('code', 'error')}: {error.get('message', '')}",
            body,
        )
    body["_seconds"] = time.perf_counter() - started
    return body


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"error": {"code": "bad_response", "message": response.text[:200]}}
    return body if isinstance(body, dict) else {}


def report_table(report: dict[str, Any], base_url: str) -> Table:
    """An upload report as a two-column table."""
    table = Table(
        title=f"upload {report['upload_id']}: {report['kind']} {report['filename']}",
        show_header=False,
    )
    table.add_column("", style="bold")
    table.add_column("")
    rows = [
        ("status", report["status"]),
        ("rows read", f"{report['rows_total']:,}"),
        ("inserted", f"{report['rows_inserted']:,}"),
        ("updated", f"{report['rows_updated']:,}"),
        ("unchanged", f"{report['rows_unchanged']:,}"),
        ("rejected", f"{report['rows_rejected']:,}"),
    ]
    rows += [(f"  {code}", f"{n:,}") for code, n in sorted(report["rejects_by_code"].items())]
    rows += [("warning", w) for w in report["warnings"]]
    if report["rows_rejected"]:
        rows.append(("rejects", f"{base_url.rstrip('/')}{report['rejects_url']}?format=csv"))
    rows.append(("sha256", report["sha256"] or ""))
    if "_seconds" in report:
        rate = report["rows_total"] / report["_seconds"] if report["_seconds"] else 0
        rows.append(("time", f"{report['_seconds']:.2f} s ({rate:,.0f} rows/s)"))
    for key, value in rows:
        table.add_row(key, str(value))
    return table
