"""How a run computes (light: the service imports it without numpy or pandas)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Options:
    """Engine (`local` or `dask`), the Dask scheduler's address, whether the global
    LightGBM model takes part and its time budget, and how many days of history the
    series hold."""

    engine: str = "local"
    dask_address: str | None = None
    lightgbm: bool = True
    history_days: int = 1096
    # Seconds LightGBM's fits may take in all (it trains on the head of the catalogue).
    time_budget_seconds: float = 60.0
