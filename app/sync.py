"""`orderlens sync`: the Parquet change feeds into a warehouse, through dlt.

Reads over HTTP only (a read key at most, no database credentials), so it works against
a remote Orderlens. Each feed is a dlt resource that merges on the feed's primary key;
its cursor (the feed's `X-Next-Cursor`) is kept in dlt's resource state, which dlt
commits in the destination together with the rows it loaded. A sync that dies half-way
has committed neither, and the next one reads again from the last committed cursor: the
merge makes a row read twice one row. The local working folder is a temporary one: the
destination holds everything a sync needs.

A column a feed gains (the text ids' `order_code`, `product_code`) is added by dlt's
schema evolution on the next sync, even one that loads no row: an empty read is handed
over as an empty table of the feed's schema.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from app.exports.feeds import KEYS, FeedName

if TYPE_CHECKING:
    import pyarrow as pa

DEFAULT_DESTINATION = "duckdb:///warehouse/orderlens.duckdb"
DATASET = "orderlens_raw"
PIPELINE = "orderlens"
FEED_TIMEOUT = httpx.Timeout(connect=10.0, read=600.0, write=60.0, pool=10.0)
DOWNLOAD_CHUNK = 1 << 20


class SyncError(Exception):
    """A sync that could not run: one line for the user."""


@dataclass(frozen=True)
class Destination:
    """Where a sync writes: dlt's destination kind and what it needs."""

    kind: str  # duckdb, postgres, filesystem, bigquery
    target: str  # a file path, a connection URL, a bucket URL, or a project id
    dataset: str = DATASET

    def describe(self) -> str:
        if self.kind == "postgres":
            parts = urlsplit(self.target)
            where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"
            return f"postgres {where}, schema {self.dataset}"
        if self.kind == "bigquery":
            return f"bigquery project {self.target}, dataset {self.dataset}"
        return f"{self.kind} {self.target}"


def parse_destination(url: str) -> Destination:
    """`duckdb:///relative/path`, `duckdb:////absolute/path`, `postgresql://…`,
    `file:///dir` (Delta tables of Parquet files) or `bigquery://project/dataset`."""
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme == "duckdb":
        if not rest.startswith("/") or rest == "/":
            raise SyncError(f"{url}: write duckdb:///relative/path or duckdb:////absolute/path")
        return Destination("duckdb", rest[1:])
    if scheme in {"postgresql", "postgres"}:
        parts = urlsplit(url)
        if not parts.path.strip("/"):
            raise SyncError(f"{_safe(url)}: name the database: postgresql://user@host/db")
        return Destination("postgres", url)
    if scheme == "file":
        if not rest.startswith("/") or rest == "/":
            raise SyncError(f"{url}: write file:///absolute/folder")
        return Destination("filesystem", url)
    if scheme == "bigquery":
        project, _, dataset = rest.partition("/")
        if not project or not dataset or "/" in dataset:
            raise SyncError(f"{url}: write bigquery://project/dataset")
        return Destination("bigquery", project, dataset)
    raise SyncError(
        f"{_safe(url)}: unknown destination; use duckdb:///path, postgresql://…, file:///dir"
        " or bigquery://project/dataset"
    )


def _safe(url: str) -> str:
    """A URL without its password."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def _dlt_destination(dest: Destination) -> Any:
    from dlt import destinations

    if dest.kind == "duckdb":
        Path(dest.target).parent.mkdir(parents=True, exist_ok=True)
        return destinations.duckdb(credentials=dest.target)
    if dest.kind == "postgres":
        from dlt.destinations.impl.postgres.configuration import PostgresCredentials

        credentials = PostgresCredentials()
        credentials.parse_native_representation(dest.target)
        if credentials.password is None:  # trust or peer authentication: dlt wants one
            credentials.password = ""
        credentials.resolve()
        return destinations.postgres(credentials=credentials)
    if dest.kind == "filesystem":
        return destinations.filesystem(bucket_url=dest.target)
    project: Any = {"project_id": dest.target}  # the rest from Google's default auth
    return destinations.bigquery(credentials=project)


@dataclass(frozen=True)
class Service:
    """The Orderlens a sync reads: base URL and an optional read key."""

    base_url: str
    api_key: str | None = None
    # The name this sync gives itself in the service's log of reads (`/syncs`), by which
    # `/freshness` says how old its copy is.
    consumer: str | None = None

    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key} if self.api_key else {}


def fetch(
    service: Service, feed: FeedName, since: str | None, folder: Path, dataset: str | None = None
) -> tuple[Path, str]:
    """Download one read of a feed to a file (streamed: flat memory); its next cursor.
    The read names its consumer and the `dataset` it loads into, when given."""
    given = {"since": since, "consumer": service.consumer, "dataset": dataset}
    params = {name: value for name, value in given.items() if value}
    path = folder / f"{feed.value}.parquet"
    url = f"{service.base_url.rstrip('/')}/exports/{feed.value}.parquet"
    try:
        with httpx.stream(
            "GET", url, params=params, headers=service.headers(), timeout=FEED_TIMEOUT
        ) as response:
            if response.status_code != 200:
                response.read()
                raise SyncError(f"GET {url}: {response.status_code} {_error(response)}")
            with path.open("wb") as fh:
                for chunk in response.iter_bytes(DOWNLOAD_CHUNK):
                    fh.write(chunk)
            return path, response.headers["X-Next-Cursor"]
    except httpx.HTTPError as exc:
        raise SyncError(f"could not read {url}: {exc}") from None


def default_consumer() -> str:
    """`sync@` and this machine's name, as a consumer's name may be written."""
    host = re.sub(r"[^A-Za-z0-9_.:@/-]", "-", socket.gethostname()) or "localhost"
    return f"sync@{host}"[:64]


def _error(response: httpx.Response) -> str:
    with contextlib.suppress(ValueError, KeyError, TypeError):
        error = response.json()["error"]
        return f"{error['code']}: {error['message']}"
    return response.text[:200]


# The column every raw table gains: when the sync that last loaded the row started (UTC).
LOADED_AT = "_loaded_at"


def _batches(path: Path, loaded_at: dt.datetime) -> Iterator[pa.Table]:
    """A downloaded feed, one row group at a time, each row stamped `loaded_at`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    stamp = pa.scalar(loaded_at, pa.timestamp("us", tz="UTC"))

    def stamped(table: pa.Table) -> pa.Table:
        column = pa.array([stamp.as_py()] * table.num_rows, stamp.type)
        return table.append_column(LOADED_AT, column)

    if file.num_row_groups == 0:  # an empty table still makes its table (dbt's sources)
        yield stamped(file.schema_arrow.empty_table())
    for index in range(file.num_row_groups):
        group = file.read_row_group(index).to_batches()
        yield stamped(pa.Table.from_batches(group, file.schema_arrow))


def _resource(
    service: Service, feed: FeedName, folder: Path, dest: Destination, loaded_at: dt.datetime
) -> Any:
    import dlt

    table_format = "delta" if dest.kind == "filesystem" else None

    @dlt.resource(  # type: ignore[call-overload, untyped-decorator]
        name=feed.value,
        primary_key=list(KEYS[feed]),
        write_disposition="merge",
        table_format=table_format,
    )
    def rows() -> Iterator[pa.Table]:
        state = dlt.current.resource_state()
        path, next_cursor = fetch(service, feed, state.get("cursor"), folder, dest.dataset)
        yield from _batches(path, loaded_at)
        state["cursor"] = next_cursor  # committed with the rows, in the destination

    return rows


@dataclass(frozen=True)
class Outcome:
    destination: str
    rows: dict[str, int]


def sync(
    service: Service, destination: str, feeds: tuple[FeedName, ...] = tuple(FeedName)
) -> Outcome:
    """Copy what changed in each feed since the last sync into `destination`."""
    dest = parse_destination(destination)
    # dlt reports anonymous usage to its servers unless told not to.
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    import dlt

    with tempfile.TemporaryDirectory(prefix="orderlens-sync-") as work:
        folder = Path(work)
        try:
            # The destination first: an unreachable one (or a folder that cannot be made)
            # fails here, before any feed is read.
            pipeline = dlt.pipeline(
                pipeline_name=PIPELINE,
                destination=_dlt_destination(dest),
                dataset_name=dest.dataset,
                pipelines_dir=str(folder / "pipelines"),
            )
            pipeline.sync_destination()
        except Exception as exc:
            raise SyncError(f"cannot reach {dest.describe()}: {_first_line(_root(exc))}") from None
        loaded_at = dt.datetime.now(dt.UTC)
        resources = [_resource(service, feed, folder, dest, loaded_at) for feed in feeds]
        try:
            pipeline.run(resources)
        except Exception as exc:
            cause = _root(exc)
            if isinstance(cause, SyncError):
                raise cause from None
            raise SyncError(
                f"loading into {dest.describe()} failed: {_first_line(cause)}"
            ) from None
        trace = pipeline.last_trace
        counts = trace.last_normalize_info if trace is not None else None
        loaded = counts.row_counts if counts is not None else {}
        return Outcome(dest.describe(), {f.value: int(loaded.get(f.value, 0)) for f in feeds})


def _root(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None or exc.__context__ is not None:
        nxt = exc.__cause__ or exc.__context__
        assert nxt is not None
        if isinstance(exc, SyncError):
            return exc
        exc = nxt
    return exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
