"""How a run computes (light: the service imports it without numpy or pandas)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Options:
    """Engine (`local` or `dask`), the Dask scheduler's address, and whether the global
    LightGBM model takes part."""

    engine: str = "local"
    dask_address: str | None = None
    lightgbm: bool = True
