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
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncpg
from sqlalchemy.engine import URL

from app.db import JIT, asyncpg_dsn
from app.errors import AppError, database_gone
from app.forecasting import queries
from app.forecasting.options import Options

if TYPE_CHECKING:
    import pandas as pd

    from app.forecasting import engine as core

log = logging.getLogger(__name__)

PROGRESS_EVERY_SECONDS = 0.5
CONNECT_TIMEOUT_SECONDS = 5  # as the pools' (db.create_engine)


class RunInProgress(AppError):
    status_code = 409
    code = "run_in_progress"


@dataclass
class Handle:
    """A started run: its id, its row as first written, and the connection that holds
    the lock (closing it lets the lock go)."""

    run_id: int
    row: dict[str, Any]
    conn: Any
    horizon: int
    progress: float = 0.0
    done: asyncio.Event = field(default_factory=asyncio.Event)


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
    conn = await asyncpg.connect(
        asyncpg_dsn(url),
        timeout=CONNECT_TIMEOUT_SECONDS,
        server_settings={"application_name": "orderlens forecast", "jit": JIT},
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
        history = await _read_history(conn, handle.run_id)
        stop = asyncio.Event()
        ticker = asyncio.create_task(_report_progress(handle, stop))
        try:
            result = await asyncio.to_thread(
                core.run,
                history,
                horizon=handle.horizon,
                options=options,
                progress=lambda p: setattr(handle, "progress", p),
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
        await _fail(url, handle.run_id, exc)
        if not isinstance(exc, Exception):
            raise
        if database_gone(exc):
            log.warning("forecast run %s failed: database unavailable (%s)", handle.run_id,
                        type(exc).__name__)  # fmt: skip
        else:
            log.exception("forecast run %s failed", handle.run_id)
        return None
    finally:
        handle.done.set()
        await _let_go(conn)


async def _let_go(conn: Any) -> None:
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


async def _read_history(conn: Any, run_id: int) -> core.History:
    """The sale cells and products, and what the run saw, in one snapshot."""
    import pandas as pd

    from app.forecasting import engine as core

    async with conn.transaction(isolation="repeatable_read", readonly=True):
        snap = await conn.fetchrow(queries.SNAPSHOT)
        cells = await _frame(conn, queries.SALE_CELLS, ["product_id", "date", "quantity"])
        products = await _frame(conn, queries.PRODUCTS, ["product_id", "category", "price"])
    await conn.execute(
        queries.RECORD_SNAPSHOT,
        run_id,
        snap["data_until"],
        snap["seen_upload_id"],
        list(snap["running_uploads"]),
    )
    cells["date"] = pd.to_datetime(cells["date"]).dt.date
    products["category"] = products["category"].astype(str)
    return core.History(data_until=snap["data_until"], cells=cells, products=products)


async def _frame(conn: Any, query: str, names: list[str]) -> pd.DataFrame:
    """A query's rows as a DataFrame, through COPY (far quicker than records)."""
    import pandas as pd

    buffer = io.BytesIO()

    async def write(data: bytes) -> None:
        buffer.write(data)

    await conn.copy_from_query(query, output=write, format="csv")
    buffer.seek(0)
    return pd.read_csv(buffer, names=names, header=None, keep_default_na=False)


async def _report_progress(handle: Handle, stop: asyncio.Event) -> None:
    last = -1.0
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PROGRESS_EVERY_SECONDS)
        if handle.progress != last and not stop.is_set():
            last = handle.progress
            await handle.conn.execute(queries.SET_PROGRESS, handle.run_id, min(last, 0.99))


async def _store(conn: Any, run_id: int, result: core.Result, keep_runs: int) -> None:
    """Predictions, per-product figures and the run's success, in one transaction."""
    preds = result.predictions
    records = zip(
        [run_id] * len(preds),
        preds["product_id"].astype(int).tolist(),
        preds["date"].tolist(),
        *(
            preds[c].astype(float).tolist()
            for c in ("quantity", "lo_80", "hi_80", "lo_95", "hi_95")
        ),
        preds["model"].astype(str).tolist(),
        strict=True,
    )
    table = result.products
    product_records = [
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
    served = table["model"].value_counts().to_dict() if len(table) else {}
    models = {"seconds": {k: round(v, 3) for k, v in result.seconds.items()}, "served": served}
    async with conn.transaction():
        await conn.copy_records_to_table(
            "predicted_product_demand", records=records, columns=queries.PREDICTION_COLUMNS
        )
        await conn.copy_records_to_table(
            "forecast_products", records=product_records, columns=queries.PRODUCT_COLUMNS
        )
        await conn.execute(
            queries.SUCCEED,
            run_id,
            len(table),
            json.dumps(models),
            json.dumps(result.accuracy, default=_number),
        )
        await conn.execute(queries.PRUNE, keep_runs)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


async def _fail(url: URL, run_id: int, exc: BaseException) -> None:
    """Mark the run failed, on a fresh connection (the run's may be what died)."""
    error = {"code": "forecast_failed", "message": f"{type(exc).__name__}: {exc}"[:1000]}
    try:
        conn = await asyncpg.connect(asyncpg_dsn(url), timeout=CONNECT_TIMEOUT_SECONDS)
        try:
            await conn.execute(queries.FAIL, run_id, json.dumps(error))
        finally:
            await conn.close()
    except Exception as why:
        # The database may be what failed: readers sweep it to failed once the lock is free.
        log.warning("could not mark forecast run %s failed: %s", run_id, type(why).__name__)
