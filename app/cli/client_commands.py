"""The commands that call a running service over HTTP: ingest, export, uploads, sync."""

from __future__ import annotations

import contextlib
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.cli import common
from app.cli.common import ApiKeyOption, DatasetOption, OnConflict, UploadKind, UrlOption

if TYPE_CHECKING:
    from app.exports import sync as syncing


def ingest(
    kind: Annotated[UploadKind, typer.Argument(help="What the file holds.")],
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The CSV file.")
    ],
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    on_conflict: Annotated[
        OnConflict, typer.Option(help="Stored ids with other values: reject or update.")
    ] = OnConflict.REJECT,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            metavar="NAME=VALUE",
            help="Another query parameter of the upload, as POST /uploads takes it (docs/"
            "UPLOADS.md); repeat for several: -p max_rejected_share=0.5"
            " -p columns=id=LineNo,created_date=When -p date_format=%d/%m/%Y",
        ),
    ] = None,
) -> None:
    """Upload a CSV to a running service with a progress bar, then print its report."""
    from app.cli import client

    base, source = common.service_url(url)
    key = common.key(api_key)
    if not key:
        common.err().print("[red]No API key: pass --api-key or set API_KEY.[/red]")
        raise typer.Exit(2)
    params = {"on_conflict": on_conflict.value}
    for given in param or []:
        name, sep, value = given.partition("=")
        if not sep or not name.strip():
            common.err().print(f"--param {given!r} is not NAME=VALUE", style="red", markup=False)
            raise typer.Exit(2)
        params[name.strip()] = value
    try:
        report = client.upload(
            base_url=base,
            api_key=key,
            kind=kind.value,
            path=file,
            params=params,
            console=common.err(),
        )
    except client.ClientError as exc:
        common.fail("upload", exc, base, source)
    common.out().print(client.report_table(report, base))
    from app.uploads.schemas import WARN_REJECTED_SHARE

    if report.get("rejected_share", 0) >= WARN_REJECTED_SHARE:
        # Half or more of the file was rejected: said on stderr too, where it is seen.
        for warning in report["warnings"]:
            common.err().print(
                f"warning: {warning}", style="bold red", markup=False, soft_wrap=True
            )


class ExportName(StrEnum):
    """The assessment's three files (GET /exports/NAME.csv)."""

    ORDER_FULL_INFORMATION = "order_full_information"
    FIXED_ORDER_FULL_INFORMATION = "fixed_order_full_information"
    KPI_PRODUCT_ORDERS = "kpi_product_orders"


def export(
    name: Annotated[
        ExportName,
        typer.Argument(
            metavar="NAME",
            show_choices=False,
            help="order_full_information, fixed_order_full_information or"
            " kpi_product_orders: the assessment's files, at /exports/NAME.csv.",
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            dir_okay=False,
            help="Write to this file (replaced only once the download is complete);"
            " default or '-': standard output.",
        ),
    ] = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    fx_mode: Annotated[
        common.FxMode | None,
        typer.Option(help="USD at the latest rate or at each order's date (default: FX_MODE)."),
    ] = None,
) -> None:
    """Download one of the CSV exports, streamed to a file or standard output."""
    from app.cli import client

    base, source = common.service_url(url)
    key = common.key(api_key)
    params = {"fx_mode": fx_mode.value} if fx_mode else None
    try:
        written = _download(base, f"/exports/{name.value}.csv", out, params, key)
    except client.ClientError as exc:
        common.fail("export", exc, base, source)
    if written is not None:
        common.err().print(
            f"{out}: {written:,} bytes", markup=False, highlight=False, soft_wrap=True
        )


def _download(
    base: str, path: str, out: Path | None, params: dict[str, str] | None, api_key: str | None
) -> int | None:
    """`path` streamed to standard output (None), or to `out`, replaced only once the
    download is complete (its size)."""
    from app.cli import client

    if out is None or str(out) == "-":
        client.download(
            base_url=base,
            path=path,
            out=sys.stdout.buffer,
            params=params,
            api_key=api_key,
            console=common.err(),
        )
        return None
    partial = out.with_name(out.name + ".part")
    try:
        with partial.open("wb") as fh:
            written = client.download(
                base_url=base,
                path=path,
                out=fh,
                params=params,
                api_key=api_key,
                console=common.err(),
            )
        partial.replace(out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return written


def uploads(
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    limit: Annotated[
        int, typer.Option(min=1, max=1000, help="How many uploads to show, newest first.")
    ] = 20,
    kind: Annotated[UploadKind | None, typer.Option(help="Only uploads of this kind.")] = None,
) -> None:
    """Print the upload history (GET /uploads) as a table."""
    from app.cli import client

    base, source = common.service_url(url)
    params: dict[str, str | int] = {"limit": limit}
    if kind is not None:
        params["kind"] = kind.value
    try:
        page = client.get_json(
            base_url=base,
            path="/uploads",
            params=params,
            headers=client.key_header(common.key(api_key)),
        )
    except client.ClientError as exc:
        common.fail("uploads", exc, base, source)
    out = common.out()
    if not page["items"]:
        out.print("no uploads yet")
        return
    out.print(client.uploads_table(page["items"]))


SyncToOption = Annotated[
    str,
    typer.Option(
        "--to",
        envvar="ORDERLENS_SYNC_TO",
        help="duckdb:///relative/path, duckdb:////absolute/path, postgresql://…,"
        " file:///folder (Delta tables of Parquet) or bigquery://project/dataset.",
    ),
]
ConsumerOption = Annotated[
    str | None,
    typer.Option(
        envvar="ORDERLENS_SYNC_CONSUMER",
        help="This sync's name in the service's log of reads (/syncs), by which"
        " /freshness says how old its copy is. Default: sync@ and this machine's name.",
    ),
]
ShowDatasetOption = Annotated[
    bool,
    typer.Option(
        "--show-dataset",
        help="Print the dataset the sync would load into (for dbt's ORDERLENS_DATASET)"
        " and exit, syncing nothing.",
    ),
]


def sync(
    to: SyncToOption = common.DEFAULT_WAREHOUSE,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    consumer: ConsumerOption = None,
    dataset: DatasetOption = None,
    show_dataset: ShowDatasetOption = False,
) -> None:
    """Copy what changed in the change feeds into a warehouse (dlt: merge on keys)."""
    from app.exports import sync as syncing

    base, _ = common.service_url(url)
    key = common.key(api_key)  # a read key is enough; the write key also tells a failure
    service = syncing.Service(base, key, consumer or syncing.default_consumer())
    if show_dataset:
        try:
            common.out().print(syncing.resolve_dataset(service, to, dataset), markup=False)
        except syncing.SyncError as exc:
            common.err().print(str(exc), style="red", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        return
    outcome = _sync(service, to, dataset)
    common.out().print(
        f"synced into {outcome.destination}: {outcome.loaded()}", markup=False, highlight=False
    )
    if outcome.unreported:
        common.err().print(
            f"loaded, but the service was not told (its /syncs shows the reads as sent):"
            f" {outcome.unreported}",
            style="yellow",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def _sync(service: syncing.Service, to: str, dataset: str | None) -> syncing.Outcome:
    """The sync's outcome; a failure said on stderr and to the service's alerts, exit 1;
    a stop on a signal, the exit status of a process that signal ended."""
    from app.cli import client
    from app.exports import sync as syncing

    try:
        return syncing.sync(service, to, dataset=dataset)
    except syncing.SyncStopped as exc:
        # Stopped on purpose: nothing to alert; the exit status of a process a signal ended.
        # Its working folder is gone; dlt's loader threads may still be inside a statement
        # (seconds, at 10M rows): not waited for. The destination discards what they had
        # not committed, as after a kill, and the next sync reads it again.
        common.err().print(f"sync {exc}", style="yellow", markup=False, highlight=False)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + exc.signum)
    except syncing.SyncError as exc:
        common.err().print(
            f"sync failed: {exc}", style="red", markup=False, highlight=False, soft_wrap=True
        )
        # Told to the service's alerts when the key may write (a read key may not: 403).
        client.tell_failure(
            base_url=service.base_url,
            api_key=service.api_key,
            subject=f"sync {service.consumer}",
            message=str(exc),
        )
        raise typer.Exit(1) from None
