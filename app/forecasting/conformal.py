"""Conformal intervals from a backtest's errors, and their coverage held out.

Both the products (`engine`) and the total and categories (`levels`) serve a forecast
plus or minus a half-width: per series, a quantile of its absolute backtest errors. The
coverage reported beside it is honest: each backtest window is scored with the widths
calibrated on the other windows, never on itself.
"""

from __future__ import annotations

import pandas as pd

LEVELS = (80, 95)


def widths(errors: pd.DataFrame) -> pd.DataFrame:
    """Per series (rows: `unique_id`), the half-width of each interval (columns: LEVELS):
    that quantile of the absolute errors `err`, the higher of two neighbours."""
    g = errors.groupby("unique_id")["err"]
    return pd.DataFrame(
        {level: g.quantile(level / 100, interpolation="higher") for level in LEVELS}
    )


def held_out_hits(frame: pd.DataFrame) -> pd.DataFrame:
    """Per backtest row of `frame` (`unique_id, window, err, y`): `unique_id`, `y` and,
    per level, whether its error is within the width calibrated on the other windows
    (`in_80`, `in_95`); a series backtested in one window only is calibrated on it."""
    parts = []
    for w in sorted(frame["window"].unique()):
        this = frame[frame["window"] == w]
        own = widths(this)
        q = widths(frame[frame["window"] != w]).reindex(own.index).fillna(own)
        ids = this["unique_id"]
        part = pd.DataFrame({"unique_id": ids.to_numpy(), "y": this["y"].to_numpy()})
        for level in LEVELS:
            part[f"in_{level}"] = this["err"].to_numpy() <= q[level].reindex(ids).to_numpy()
        parts.append(part)
    return pd.concat(parts, ignore_index=True)
