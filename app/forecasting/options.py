"""How a run computes (light: the service imports it without numpy or pandas)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Options:
    """Engine (`local` or `dask`), the Dask scheduler's address, whether the global
    LightGBM model takes part, and how many days of history the series hold."""

    engine: str = "local"
    dask_address: str | None = None
    lightgbm: bool = True
    history_days: int = 1096
