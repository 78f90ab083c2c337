"""What a run reads, as the models take it: each product's daily series.

`History` is the run's input (sparse sale cells and the products); `daily_series`
zero-fills each product's units from its first sale to `data_until`; `windows_for` says
how many backtest windows a series of that length gets. The constants every step of the
engine shares live here: the season, the shortest history worth a backtest, the windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

MAX_WINDOWS = 3
SEASON = 7
# Below this many days a series gives seasonal naive and the lags nothing to learn from.
MIN_HISTORY_DAYS = 28


@dataclass(frozen=True)
class History:
    """What a run reads: sparse sale cells and the products they belong to."""

    data_until: date | None
    # product_id, date, quantity: one row per product and day with sales.
    cells: pd.DataFrame
    # product_id, category, price.
    products: pd.DataFrame


def daily_series(history: History) -> pd.DataFrame:
    """unique_id, ds, y: every product's units per day from its first sale to data_until,
    days without sales as 0."""
    cells = history.cells
    if history.data_until is None or cells.empty:
        return pd.DataFrame(
            {
                "unique_id": pd.Series(dtype="int64"),
                "ds": pd.Series(dtype="datetime64[ns]"),
                "y": pd.Series(dtype="float64"),
            }
        )
    until = np.datetime64(history.data_until, "D")
    days = cells["date"].to_numpy(dtype="datetime64[D]")
    ids = cells["product_id"].to_numpy(dtype=np.int64)
    order = np.lexsort((days, ids))
    ids, days = ids[order], days[order]
    qty = cells["quantity"].to_numpy(dtype=np.float64)[order]
    uids, first_at = np.unique(ids, return_index=True)
    starts = days[first_at]
    lengths = (until - starts).astype(np.int64) + 1
    offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    total = int(lengths.sum())
    group = np.repeat(np.arange(len(uids)), lengths)
    within = np.arange(total) - offsets[group]
    y = np.zeros(total)
    pos = np.searchsorted(uids, ids)
    y[offsets[pos] + (days - starts[pos]).astype(np.int64)] = qty
    return pd.DataFrame(
        {
            "unique_id": uids[group],
            "ds": (starts[group] + within).astype("datetime64[ns]"),
            "y": y,
        }
    )


def windows_for(length: int, horizon: int) -> int:
    """Backtest windows a series of `length` days gets: 3, fewer when short, 0 when it is
    shorter than two horizons (or four weeks)."""
    if length < max(2 * horizon, MIN_HISTORY_DAYS):
        return 0
    return min(MAX_WINDOWS, length // horizon - 1)
