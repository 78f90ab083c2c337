"""The command line's HTTP client: uploads and downloads with a progress bar, reports
and the upload history as tables."""

from __future__ import annotations

import contextlib
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

import httpx
from rich.console import Console, ConsoleOptions, RenderResult
from rich.padding import Padding
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
    """The service answered with an error (its `{"error": …}` body) or not at all
    (`unreachable`: nothing answered at that URL)."""

    def __init__(
        self, message: str, body: dict[str, Any] | None = None, *, unreachable: bool = False
    ) -> None:
        super().__init__(message)
        self.body = body
        self.unreachable = unreachable


def upload(
    *,
    base_url: str,
    api_key: str,
    kind: str,
    path: Path,
    params: dict[str, str],
    console: Console,
) -> dict[str, Any]:
    """POST the file to /uploads/{kind} with the upload's query `params`, showing bytes
    sent, then the wait for the report."""
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
                params=params,
                headers={"X-API-Key": api_key},
                files={"file": (path.name, cast(IO[bytes], reader), "text/csv")},
                timeout=UPLOAD_TIMEOUT,
            )
        except httpx.HTTPError as exc:
            raise _no_answer(base_url, exc) from exc
    body = _checked(response)
    body["_seconds"] = time.perf_counter() - started
    return body


def key_header(api_key: str | None) -> dict[str, str]:
    """The X-API-Key header for `api_key`; none without one."""
    return {"X-API-Key": api_key} if api_key else {}


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
    headers = key_header(api_key)
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
        if written:
            raise ClientError(f"download interrupted: {_why(exc)}") from exc
        raise _no_answer(base_url, exc) from exc
    return written


def get_json(
    *,
    base_url: str,
    path: str,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """GET a JSON answer; the service's errors as ClientError."""
    return _request_json("GET", base_url, path, params=params, headers=headers)


def post_json(
    *, base_url: str, path: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """POST a JSON body, a JSON answer; the service's errors as ClientError."""
    return _request_json("POST", base_url, path, json=body, headers=headers)


def _request_json(method: str, base_url: str, path: str, **request: Any) -> dict[str, Any]:
    try:
        response = httpx.request(
            method, f"{base_url.rstrip('/')}{path}", timeout=READ_TIMEOUT, **request
        )
    except httpx.HTTPError as exc:
        raise _no_answer(base_url, exc) from exc
    return _checked(response)


def tell_failure(
    *, base_url: str, api_key: str | None, subject: str, message: str, key: str | None = None
) -> None:
    """Tell the service a step of work failed (`POST /alerts`: a `step_failed` alert, once
    per subject and key). Never raises: without a key that may write (a read key is 403),
    or with the service itself down, the caller's own exit code and message say it."""
    if not api_key:
        return
    body = {"subject": subject[:200], "message": message[:4000], "key": key}
    with contextlib.suppress(ClientError):
        post_json(base_url=base_url, path="/alerts", body=body, headers={"X-API-Key": api_key})


def _why(exc: httpx.HTTPError) -> str:
    return str(exc) or type(exc).__name__


def _no_answer(base_url: str, exc: httpx.HTTPError) -> ClientError:
    """Nothing listens there (`unreachable`), or the exchange broke off."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return ClientError(_why(exc), unreachable=True)
    return ClientError(f"no answer from {base_url}: {_why(exc)}")


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
        ("rejected", f"{report['rows_rejected']:,} ({report.get('rejected_share', 0):.1%})"),
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
CAPTION = "rows read: ins inserted, upd updated, same unchanged, rej rejected"
INDENT = 4


class UploadsTable:
    """The upload history, newest first, readable at any width from 80 columns: a file
    name is never cut (when the columns leave it no room, every name gets a line of its
    own under its upload) and a failed upload's error has lines of its own."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        cells = [self._cells(u, thousands=True) for u in self.items]
        headers = ["id", "kind", "status", *(h for h, _ in COUNT_COLUMNS), "started (UTC)"]
        widths = _widths(headers, cells)
        if sum(widths) + len(widths) - 1 > width:  # millions in every column: drop the commas
            cells = [self._cells(u, thousands=False) for u in self.items]
            widths = _widths(headers, cells)
        names = [u["filename"] or "" for u in self.items]
        room = width - (sum(widths) + len(widths))
        inline = max(map(len, names), default=0) <= room
        yield Text("uploads, newest first", style="italic", justify="center")
        header = self._line(headers, widths, header=True)
        if inline:
            header.append(" ").append("file", style="bold underline")
        yield header
        for upload, row, name in zip(self.items, cells, names, strict=True):
            line = self._line(row, widths, status=upload["status"])
            if inline:
                line.append(" ").append(name)  # as is: a file name is not markup
                yield line
            else:
                yield line
                yield Padding(Text(name, overflow="fold"), (0, 0, 0, INDENT))
            if error := upload.get("error"):
                message = f"{error.get('code', '')}: {error.get('message', '')}"
                yield Padding(Text(message, style="red"), (0, 0, 0, INDENT))
        yield Text(CAPTION, style="dim", justify="center")

    @staticmethod
    def _cells(upload: dict[str, Any], *, thousands: bool) -> list[str]:
        counts = [f"{upload[key]:,}" if thousands else str(upload[key]) for _, key in COUNT_COLUMNS]
        return [
            str(upload["upload_id"]),
            upload["kind"],
            upload["status"],
            *counts,
            _when(upload["started_at"]),
        ]

    @staticmethod
    def _line(
        cells: list[str], widths: list[int], *, header: bool = False, status: str = ""
    ) -> Text:
        line = Text(no_wrap=True, overflow="ignore")
        for i, (cell, size) in enumerate(zip(cells, widths, strict=True)):
            if i:
                line.append(" ")
            # id and the counts are numbers, right-aligned; kind, status and the date not.
            padded = cell.rjust(size) if i == 0 or 3 <= i < 3 + len(COUNT_COLUMNS) else cell
            padded = padded.ljust(size)
            if header:  # underline the words, not the padding
                word = padded.strip()
                lead = padded.index(word)
                line.append(padded[:lead]).append(word, style="bold underline")
                line.append(padded[lead + len(word) :])
            elif i == 2:
                line.append(padded, style=STATUS_STYLE.get(status, ""))
            else:
                line.append(padded)
        return line


def _widths(headers: list[str], rows: list[list[str]]) -> list[int]:
    return [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]


def uploads_table(items: list[dict[str, Any]]) -> UploadsTable:
    """The upload history, one upload per entry, newest first."""
    return UploadsTable(items)
