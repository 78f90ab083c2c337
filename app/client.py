"""The command line's HTTP client: uploads and downloads with a progress bar, reports
and the upload history as tables."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
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
from rich.text import Text

UPLOAD_TIMEOUT = httpx.Timeout(connect=10.0, read=3600.0, write=600.0, pool=10.0)
DOWNLOAD_TIMEOUT = httpx.Timeout(connect=10.0, read=600.0, write=60.0, pool=10.0)
READ_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


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
    body = _checked(response)
    body["_seconds"] = time.perf_counter() - started
    return body


def download(
    *,
    base_url: str,
    path: str,
    out: IO[bytes],
    params: dict[str, str] | None = None,
    api_key: str | None = None,
    console: Console,
) -> int:
    """GET `path` and stream its body into `out` as it arrives, with a progress bar of
    bytes (the total is unknown when the service streams); returns the bytes written."""
    headers = {"X-API-Key": api_key} if api_key else {}
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
    )
    written = 0
    try:
        with httpx.stream(
            "GET",
            f"{base_url.rstrip('/')}{path}",
            params=params,
            headers=headers,
            timeout=DOWNLOAD_TIMEOUT,
        ) as response:
            if response.status_code >= 400:
                response.read()
                _checked(response)
            with Progress(*columns, console=console, transient=True) as progress:
                task = progress.add_task(f"downloading {path.rsplit('/', 1)[-1]}", total=None)
                for chunk in response.iter_bytes():
                    out.write(chunk)
                    written += len(chunk)
                    progress.advance(task, len(chunk))
    except httpx.HTTPError as exc:
        what = "download interrupted" if written else f"could not reach {base_url}"
        raise ClientError(f"{what}: {exc or type(exc).__name__}") from exc
    return written


def get_json(*, base_url: str, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """GET a JSON answer; the service's errors as ClientError."""
    try:
        response = httpx.get(f"{base_url.rstrip('/')}{path}", params=params, timeout=READ_TIMEOUT)
    except httpx.HTTPError as exc:
        raise ClientError(f"could not reach {base_url}: {exc}") from exc
    return _checked(response)


def _checked(response: httpx.Response) -> dict[str, Any]:
    """The JSON body of a successful answer; an error answer as one ClientError line
    (with the request id, which finds its lines in the service's log)."""
    body = _json(response)
    if response.status_code < 400:
        return body
    error = body.get("error", {}) if isinstance(body, dict) else {}
    message = f"{response.status_code} {error.get('code', 'error')}: {error.get('message', '')}"
    if request_id := response.headers.get("x-request-id"):
        message += f" (request {request_id})"
    raise ClientError(message, body)


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


def _when(value: str | None) -> str:
    if not value:
        return ""
    return f"{datetime.fromisoformat(value).astimezone(UTC):%Y-%m-%d %H:%M}"


STATUS_STYLE = {"succeeded": "green", "failed": "red", "running": "yellow"}
# Short headers keep the table within 80 columns; the caption spells them out.
COUNT_COLUMNS = (
    ("rows", "rows_total"),
    ("ins", "rows_inserted"),
    ("upd", "rows_updated"),
    ("same", "rows_unchanged"),
    ("rej", "rows_rejected"),
)


def uploads_table(items: list[dict[str, Any]]) -> Table:
    """The upload history, one row per upload, newest first."""
    table = Table(
        title="uploads, newest first",
        caption="rows read: ins inserted, upd updated, same unchanged, rej rejected",
        box=None,
        collapse_padding=True,
        pad_edge=False,
        header_style="bold underline",
    )
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("file", overflow="fold")
    table.add_column("status", no_wrap=True)
    for header, _ in COUNT_COLUMNS:
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("started (UTC)", no_wrap=True)
    for u in items:
        status = Text(u["status"], style=STATUS_STYLE.get(u["status"], ""))
        if u.get("error"):
            status.append(f"\n{u['error'].get('code', '')}")
        table.add_row(
            str(u["upload_id"]),
            u["kind"],
            Text(u["filename"] or ""),  # as is: a file name is not markup
            status,
            *(f"{u[key]:,}" for _, key in COUNT_COLUMNS),
            _when(u["started_at"]),
        )
    return table
