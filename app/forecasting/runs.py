"""A forecast run's life: take the one lock, read the rollups, compute, store, prune.

`start` takes the run lock on a connection of the run's own and records the run
(`running`); `execute` reads the history in one snapshot, computes in a thread
(engine.run) and stores everything in one transaction, or marks the run failed with its
error. The API starts runs as background tasks; `orderlens forecast` awaits them.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import math
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncpg
from sqlalchemy.engine import URL

from app import db
from app.errors import AppError, database_gone
from app.forecasting import queries
from app.forecasting.options import Options

if TYPE_CHECKING:
    import pandas as pd

    from app.forecasting import engine as core
    from app.forecasting.series import History

log = logging.getLogger(__name__)

PROGRESS_EVERY_SECONDS = 0.5
CONNECT_TIMEOUT_SECONDS = 5  # as the pools' (db.create_engine)


class RunStopped(Exception):
    """Raised inside a run's computation once its connection is gone."""


class RunInProgress(AppError):
    status_code = 409
    code = "run_in_progress"


@dataclass
class Handle:
    """A started run: its id, its row as first written, and the connection that holds
    the lock (closing it lets the lock go)."""

    run_id: int
    row: dict[str, Any]
    conn: asyncpg.Connection
    horizon: int
    progress: float = 0.0
    done: asyncio.Event = field(default_factory=asyncio.Event)
    # What the run left out of its series (once read), and why it failed (if it did).
    left_out: dict[str, Any] | None = None
    error: dict[str, str] | None = None
    # Set when the run's connection failed while it computed: the computation stops.
    lost: BaseException | None = None
    stage: str = "preparing the series"

    def advance(self, progress: float, stage: str | None = None) -> None:
        """The engine's progress callback: records how far it got, and stops it (raises)
        once the run's connection is gone, so that a run whose database went away does
        not compute on for minutes to store nothing."""
        if self.lost is not None:
            raise RunStopped("The run's database connection was lost.") from self.lost
        self.progress = progress
        if stage is not None:
            self.stage = stage


class Runner:
    """The runs this process started as background tasks (cancelled at shutdown: each
    is then marked failed)."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()

    def launch(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def start(*, url: URL, horizon: int, engine_name: str) -> Handle:
    """Take the run lock and record a new `running` run; 409 `run_in_progress` (with the
    running run's id) when another run holds it."""
    conn = await db.connect(
        url, connect_timeout=CONNECT_TIMEOUT_SECONDS, application_name="orderlens forecast"
    )
    try:
        if not await conn.fetchval(queries.TRY_LOCK, queries.FORECAST_LOCK_KEY):
            running = await conn.fetchval(queries.RUNNING_RUN)
            raise RunInProgress(
                "A forecast run is in progress; one runs at a time.",
                details={"run_id": running},
            )
        async with conn.transaction():
            await conn.execute(queries.FAIL_ORPHANS)  # we hold the lock: no one runs them
            row = dict(await conn.fetchrow(queries.INSERT_RUN, horizon, engine_name))
    except BaseException:
        await conn.close()
        raise
    return Handle(run_id=row["run_id"], row=row, conn=conn, horizon=horizon)


async def execute(
    handle: Handle, *, url: URL, options: Options, keep_runs: int
) -> core.Result | None:
    """Compute and store the run; on any failure mark it failed with the error. Returns
    the result when it succeeded."""
    from app.forecasting import engine as core

    conn = handle.conn
    try:
        history, handle.left_out = await _read_history(conn, handle.run_id, options.history_days)
        stop = asyncio.Event()
        ticker = asyncio.create_task(_report_progress(handle, stop))
        try:
            result = await asyncio.to_thread(
                core.run,
                history,
                horizon=handle.horizon,
                options=options,
                progress=handle.advance,
            )
        finally:
            stop.set()  # not cancelled: a statement cut short could spoil the connection
            await asyncio.gather(ticker, return_exceptions=True)
        await _store(conn, handle.run_id, result, keep_runs)
        log.info(
            "forecast run %s: %s products, %s",
            handle.run_id,
            len(result.products),
            {k: round(v, 2) for k, v in result.seconds.items()},
        )
        return result
    except BaseException as exc:
        handle.error = failure(exc)
        # Logged before the run reads failed: whoever sees it failed finds the log line.
        if isinstance(exc, Exception) and database_gone(exc):
            log.warning("forecast run %s failed: database unavailable (%s)", handle.run_id,
                        type(exc).__name__)  # fmt: skip
        elif isinstance(exc, Exception):
            log.exception("forecast run %s failed", handle.run_id)
        await _fail(url, handle.run_id, handle.error)
        if not isinstance(exc, Exception):
            raise
        return None
    finally:
        handle.done.set()
        await _let_go(conn)


async def _let_go(conn: asyncpg.Connection) -> None:
    """Release the run lock and close the run's connection; a connection that broke is
    ended instead, which lets the lock go all the same (nothing is raised: the run's
    outcome is already decided)."""
    if conn.is_closed():
        return
    try:
        await conn.execute(queries.UNLOCK, queries.FORECAST_LOCK_KEY)
        await conn.close()
    except Exception:
        conn.terminate()


async def _read_history(
    conn: asyncpg.Connection, run_id: int, history_days: int
) -> tuple[History, dict[str, Any]]:
    """The sale cells and products, and what the run saw, in one snapshot: the series end
    at the latest order date up to today and hold `history_days` days at most; the
    orders outside are counted in the run's `left_out`."""
    import pandas as pd

    from app.forecasting.series import History

    async with conn.transaction(isolation="repeatable_read", readonly=True):
        snap = await conn.fetchrow(queries.SNAPSHOT, history_days)
        cells = await _frame(
            conn,
            queries.SALE_CELLS,
            ["product_id", "date", "quantity"],
            snap["history_from"],
            snap["data_until"],
        )
        products = await _frame(conn, queries.PRODUCTS, ["product_id", "category", "price"])
    left_out = left_out_of(snap, history_days)
    if left_out["after_today"]["orders"]:
        log.warning(
            "forecast run %s leaves out %s orders dated after today (%s to %s)",
            run_id,
            left_out["after_today"]["orders"],
            left_out["after_today"]["first_date"],
            left_out["after_today"]["last_date"],
        )
    await conn.execute(
        queries.RECORD_SNAPSHOT,
        run_id,
        snap["data_until"],
        snap["seen_upload_id"],
        list(snap["running_uploads"]),
        json.dumps(left_out),
    )
    cells["date"] = pd.to_datetime(cells["date"]).dt.date
    products["category"] = products["category"].astype(str)
    history = History(data_until=snap["data_until"], cells=cells, products=products)
    return history, left_out


def left_out_of(snap: Any, history_days: int) -> dict[str, Any]:
    """The run's `left_out`, from its snapshot row."""

    def day(value: Any) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "after_today": {
            "today": day(snap["today"]),
            "orders": int(snap["after_orders"]),
            "units": int(snap["after_units"]),
            "first_date": day(snap["after_first"]),
            "last_date": day(snap["after_last"]),
        },
        "before_history": {
            "history_days": history_days,
            "history_from": day(snap["history_from"]),
            "orders": int(snap["before_orders"]),
            "units": int(snap["before_units"]),
        },
    }


async def _frame(
    conn: asyncpg.Connection, query: str, names: list[str], *args: Any
) -> pd.DataFrame:
    """A query's rows as a DataFrame, through COPY (far quicker than records)."""
    import pandas as pd

    buffer = io.BytesIO()

    async def write(data: bytes) -> None:
        buffer.write(data)

    await conn.copy_from_query(query, *args, output=write, format="csv")
    buffer.seek(0)
    return pd.read_csv(buffer, names=names, header=None, keep_default_na=False)


async def _report_progress(handle: Handle, stop: asyncio.Event) -> None:
    """Writes the run's progress twice a second while it moves, and otherwise asks the
    connection whether it is alive: a connection that fails marks the run lost, which
    stops the computation at its next step (`Handle.advance`)."""
    last: tuple[float, str] | None = None
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PROGRESS_EVERY_SECONDS)
        if stop.is_set():
            return
        try:
            if (handle.progress, handle.stage) != last:
                last = (handle.progress, handle.stage)
                await handle.conn.execute(
                    queries.SET_PROGRESS, handle.run_id, min(last[0], 0.99), last[1]
                )
            else:
                await handle.conn.execute("SELECT 1")
        except Exception as exc:
            handle.lost = exc
            return


async def _store(
    conn: asyncpg.Connection, run_id: int, result: core.Result, keep_runs: int
) -> None:
    """Predictions, per-product figures and the run's success, in one transaction."""
    preds, table, levels = result.predictions, result.products, result.levels
    records = _rows(
        run_id,
        preds["product_id"].astype(int).tolist(),
        preds["date"].tolist(),
        *_floats(preds, DAY_NUMBERS),
        preds["model"].astype(str).tolist(),
    )
    level_records = (
        []
        if levels is None
        else list(
            _rows(
                run_id,
                levels["level"].astype(str).tolist(),
                levels["key"].astype(str).tolist(),
                levels["date"].tolist(),
                *_floats(levels, (*DAY_NUMBERS, "unallocated")),
                levels["model"].astype(str).tolist(),
            )
        )
    )
    product_records = _product_records(run_id, table)
    models = _models(result)
    accuracy = [*result.level_accuracy, *result.accuracy]
    async with conn.transaction():
        await conn.copy_records_to_table(
            "predicted_product_demand", records=records, columns=queries.PREDICTION_COLUMNS
        )
        await conn.copy_records_to_table(
            "predicted_level_demand", records=level_records, columns=queries.LEVEL_COLUMNS
        )
        await conn.copy_records_to_table(
            "forecast_products", records=product_records, columns=queries.PRODUCT_COLUMNS
        )
        await conn.execute(
            queries.SUCCEED,
            run_id,
            len(table),
            json.dumps(models),
            json.dumps(accuracy, default=_number),
        )
        await conn.execute(queries.PRUNE, keep_runs)


# A forecast day's figures, as stored.
DAY_NUMBERS = ("quantity", "lo_80", "hi_80", "lo_95", "hi_95")


def _rows(run_id: int, *columns: list[Any]) -> Iterator[tuple[Any, ...]]:
    """The run's rows for COPY: its id, then a value of each column (equal lengths)."""
    return zip([run_id] * len(columns[0]), *columns, strict=True)


def _floats(frame: pd.DataFrame, names: tuple[str, ...]) -> list[list[float]]:
    return [frame[name].astype(float).tolist() for name in names]


def _product_records(run_id: int, table: pd.DataFrame) -> list[tuple[Any, ...]]:
    """forecast_products' rows: each product's model, history and backtest figures."""
    return [
        (
            run_id,
            int(row.product_id),  # type: ignore[arg-type]
            str(row.model),
            int(row.history_days),  # type: ignore[arg-type]
            int(row.windows),  # type: ignore[arg-type]
            *(_number(getattr(row, c)) for c in queries.PRODUCT_COLUMNS[5:]),
        )
        for row in table.itertuples(index=False)
    ]


def _models(result: core.Result) -> dict[str, Any]:
    """The run's `models`: seconds per model (or step), products each model serves, and
    the products LightGBM trained on."""
    table = result.products
    return {
        "seconds": {k: round(v, 3) for k, v in result.seconds.items()},
        "served": table["model"].value_counts().to_dict() if len(table) else {},
        "lightgbm_products": result.lightgbm_products,
    }


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def failure(exc: BaseException) -> dict[str, str]:
    """The run's `error`: a code, and what happened in plain words (with the exception's
    own words last, for whoever reports it)."""
    detail = f"{type(exc).__name__}: {exc}"[:800]
    if database_gone(exc):
        return {
            "code": "database_unavailable",
            "message": "The database went away during the run, so nothing was stored; the"
            f" previous forecasts are still served. Start a run again once it is back. ({detail})",
        }
    if isinstance(exc, MemoryError):
        return {
            "code": "out_of_memory",
            "message": "The run needed more memory than this process could have; the previous"
            " forecasts are still served. Shorten FORECAST_HISTORY_DAYS or give the service"
            f" more memory. ({detail})",
        }
    if isinstance(exc, asyncio.CancelledError):
        return {
            "code": "cancelled",
            "message": "The run was stopped (the service shut down) before it finished; the"
            " previous forecasts are still served.",
        }
    return {
        "code": "forecast_failed",
        "message": "The forecast computation failed on this data, so nothing was stored; the"
        f" previous forecasts are still served. The error was: {detail}",
    }


async def _fail(url: URL, run_id: int, error: dict[str, str]) -> None:
    """Mark the run failed, on a fresh connection (the run's may be what died)."""
    try:
        conn = await db.connect(url, connect_timeout=CONNECT_TIMEOUT_SECONDS)
        try:
            await conn.execute(queries.FAIL, run_id, json.dumps(error))
        finally:
            await conn.close()
    except Exception as why:
        # The database may be what failed: readers sweep it to failed once the lock is free.
        log.warning("could not mark forecast run %s failed: %s", run_id, type(why).__name__)
