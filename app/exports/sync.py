"""`orderlens sync`: the Parquet change feeds into a warehouse, through dlt.

Reads over HTTP only (a read key at most, no database credentials), so it works against
a remote Orderlens. Each feed is a dlt resource that merges on the feed's primary key;
its cursor (the feed's `X-Next-Cursor`) is kept in dlt's resource state, which dlt
commits in the destination with the rows it loaded (table by table). The next sync after
one that died reads again from the last committed cursor: the merge makes a row read
twice one row. The local working folder is a temporary one: the destination holds
everything a sync needs. Once every table is committed the sync reports its reads
finished (each with the token its answer carried), and only then does `/syncs` say so.

SIGTERM (and Ctrl-C) stop a sync where it is, at once: dlt's own handling, which waits
for the load to end, is turned off; the working folder goes with the stop. A folder left
by a sync killed outright (SIGKILL, a power cut) names its process: the next sync removes
it once that process is gone. Readers of the marts never see half a sync: a table a
killed sync committed fails the dbt project's check of completed syncs until the next
sync completes (warehouse/macros/loads.sql).

Each service's rows go to a dataset of their own (a schema; a BigQuery dataset): the one
given (`--dataset`), else the service's instance id (GET /instance), so that two services
syncing into one warehouse stay apart.

A column a feed gains (the text ids' `order_code`, `product_code`) is added by dlt's
schema evolution on the next sync, even one that loads no row: an empty read is handed
over as an empty table of the feed's schema.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from app.exports.destinations import Destination, dlt_destination

# Part of the sync's surface: what it raises, and how it reads a destination URL.
from app.exports.destinations import SyncError as SyncError
from app.exports.destinations import parse_destination as parse_destination
from app.exports.feeds import KEYS, FeedName

if TYPE_CHECKING:
    import pyarrow as pa

# A dataset's name: a schema in DuckDB and PostgreSQL as written, a BigQuery dataset.
DATASET_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
PIPELINE = "orderlens"
FEED_TIMEOUT = httpx.Timeout(connect=10.0, read=600.0, write=60.0, pool=10.0)
DOWNLOAD_CHUNK = 1 << 20


class SyncStopped(SyncError):
    """A sync stopped by SIGTERM or SIGINT before it completed."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


# The working folders of syncs, in the system's temporary folder; each names its process.
WORK_PREFIX = "orderlens-sync-"
OWNER_FILE = "owner.pid"


# The signal that stopped the sync in progress, if one did (set by _stoppable's handler).
_stop_signal: list[int] = []


def _stopped() -> SyncStopped | None:
    """The stop, if a signal came: an error that surfaced after it (an import it cut
    short, a dlt step it broke) is that stop, whatever it says."""
    return SyncStopped(_stop_signal[0]) if _stop_signal else None


@contextlib.contextmanager
def _stoppable() -> Iterator[None]:
    """SIGTERM and SIGINT raise SyncStopped where the sync is (the main thread), at
    once: the `with` blocks it is in unwind (the working folder is removed), and what the
    destination had not committed is read again by the next sync. Elsewhere than in the
    main thread (signals go there) this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _stop_signal.clear()

    def stop(signum: int, _frame: object) -> None:
        _stop_signal.append(signum)  # whatever error the raise below turns into in dlt
        raise SyncStopped(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def remove_leftovers(folder: Path | None = None) -> list[Path]:
    """Remove the working folders of syncs whose process is gone (killed outright):
    the folders removed. A folder without its owner file is one being made, or not a
    sync's: left alone."""
    removed = []
    for path in Path(folder or tempfile.gettempdir()).glob(f"{WORK_PREFIX}*"):
        try:
            pid = int((path / OWNER_FILE).read_text().strip())
        except (OSError, ValueError):
            continue
        if pid != os.getpid() and not _alive(pid):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


@dataclass(frozen=True)
class Service:
    """The Orderlens a sync reads: base URL and an optional read key."""

    base_url: str
    api_key: str | None = None
    # The name this sync gives itself in the service's log of reads (`/syncs`), by which
    # `/freshness` says how old its copy is.
    consumer: str | None = None

    def headers(self) -> dict[str, str]:
        from app.cli import client

        return client.key_header(self.api_key)


@dataclass(frozen=True)
class Fetched:
    """One read of a feed, downloaded: the file, the cursor after it, its id in `/syncs`
    and the token that reports it finished."""

    path: Path
    next_cursor: str
    report: tuple[int, str] | None


def fetch(
    service: Service, feed: FeedName, since: str | None, folder: Path, dataset: str | None = None
) -> Fetched:
    """Download one read of a feed to a file (streamed: flat memory). The read names its
    consumer and the `dataset` it loads into, when given, and says the sync reports its
    commit (`report`): the service logs it finished only then."""
    given = {"since": since, "consumer": service.consumer, "dataset": dataset}
    params = {name: value for name, value in given.items() if value} | {"report": "true"}
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
            sync_id, token = (response.headers.get(h) for h in ("X-Sync-Id", "X-Sync-Token"))
            report = (int(sync_id), token) if sync_id and token else None
            return Fetched(path, response.headers["X-Next-Cursor"], report)
    except httpx.HTTPError as exc:
        raise SyncError(f"could not read {url}: {exc}") from None


def report_finished(service: Service, reads: list[tuple[int, str]]) -> str | None:
    """Tell the service the destination committed these reads (`POST /syncs/finished`,
    each with its own token); None, or why it could not be told (the rows are loaded all
    the same: the reads stay `sent` in `/syncs`)."""
    from app.cli import client

    if not reads:
        return None
    body = {"reads": [{"sync_id": sync_id, "token": token} for sync_id, token in reads]}
    try:
        client.post_json(
            base_url=service.base_url,
            path="/syncs/finished",
            body=body,
            headers=service.headers(),
        )
    except client.ClientError as exc:
        return str(exc)
    return None


def default_consumer() -> str:
    """`sync@` and this machine's name, as a consumer's name may be written."""
    host = re.sub(r"[^A-Za-z0-9_.:@/-]", "-", socket.gethostname()) or "localhost"
    return f"sync@{host}"[:64]


def resolve_dataset(service: Service, destination: str, dataset: str | None = None) -> str:
    """The dataset a sync of `service` into `destination` loads: `dataset`, else the one a
    bigquery:// URL names, else the service's instance id (GET /instance)."""
    from app.cli import client

    named = parse_destination(destination).dataset
    if dataset and named and dataset != named:
        raise SyncError(f"the destination names dataset {named}, and --dataset {dataset}")
    name = dataset or named
    if name is None:
        try:
            answer = client.get_json(
                base_url=service.base_url, path="/instance", headers=service.headers()
            )
        except client.ClientError as exc:
            raise SyncError(f"cannot ask the service its instance id: {exc}") from None
        name = str(answer["instance_id"])
    if not DATASET_NAME.fullmatch(name):
        raise SyncError(
            f"{name!r} cannot name a dataset: lower-case letters, digits and _, at most 63,"
            " not starting with a digit"
        )
    return name


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
    service: Service,
    feed: FeedName,
    folder: Path,
    dest: Destination,
    loaded_at: dt.datetime,
    reads: list[tuple[int, str]],
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
        read = fetch(service, feed, state.get("cursor"), folder, dest.dataset)
        if read.report is not None:
            reads.append(read.report)
        yield from _batches(read.path, loaded_at)
        state["cursor"] = read.next_cursor  # committed with the rows, in the destination

    return rows


@dataclass(frozen=True)
class Outcome:
    destination: str
    rows: dict[str, int]
    dataset: str
    # Why the service could not be told the reads were committed (None: it was told).
    unreported: str | None = None

    def loaded(self) -> str:
        """The rows loaded per feed, as the command and the pipeline print them."""
        return ", ".join(f"{feed} {n:,}" for feed, n in self.rows.items()) + " rows"


def sync(
    service: Service,
    destination: str,
    feeds: tuple[FeedName, ...] = tuple(FeedName),
    dataset: str | None = None,
) -> Outcome:
    """Copy what changed in each feed since the last sync into `destination`, in
    `dataset` (default: resolve_dataset's)."""
    dest = parse_destination(destination)
    # dlt reports anonymous usage to its servers unless told not to; its handling of
    # signals would hold SIGTERM until the load ends.
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault("RUNTIME__INTERCEPT_SIGNALS", "false")
    import dlt

    remove_leftovers()
    with _stoppable(), tempfile.TemporaryDirectory(prefix=WORK_PREFIX) as work:
        name = resolve_dataset(service, destination, dataset)
        dest = replace(dest, dataset=name)
        folder = Path(work)
        (folder / OWNER_FILE).write_text(str(os.getpid()))
        try:
            # The destination first: an unreachable one (or a folder that cannot be made)
            # fails here, before any feed is read.
            pipeline = dlt.pipeline(
                pipeline_name=PIPELINE,
                destination=dlt_destination(dest),
                dataset_name=name,
                pipelines_dir=str(folder / "pipelines"),
            )
            pipeline.sync_destination()
        except Exception as exc:
            if stop := _stopped():
                raise stop from None
            raise SyncError(f"cannot reach {dest.describe()}: {_first_line(_root(exc))}") from None
        loaded_at = dt.datetime.now(dt.UTC)
        reads: list[tuple[int, str]] = []
        resources = [_resource(service, f, folder, dest, loaded_at, reads) for f in feeds]
        try:
            pipeline.run(resources)
        except Exception as exc:
            if stop := _stopped():
                raise stop from None
            cause = _root(exc)
            if isinstance(cause, SyncError):
                raise cause from None
            raise SyncError(
                f"loading into {dest.describe()} failed: {_first_line(cause)}"
            ) from None
        # Every table committed (dlt's run returns after the load completed): now, and
        # only now, the reads are finished.
        unreported = report_finished(service, reads)
        trace = pipeline.last_trace
        counts = trace.last_normalize_info if trace is not None else None
        loaded = counts.row_counts if counts is not None else {}
        rows = {f.value: int(loaded.get(f.value, 0)) for f in feeds}
        return Outcome(dest.describe(), rows, name, unreported)


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
