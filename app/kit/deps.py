"""What a request may be handed from the lifespan's state, as dependencies: handlers name
what they need (`EngineDep`, `SettingsDep` …) and never read `request.state` themselves.
A domain's own are in its package (`app.fx.deps.FxDep`, `app.alerts.deps.AlerterDep`,
`app.forecasting.deps.ForecastRunnerDep`), the metrics' is `app.metrics.MetricsDep`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings


def from_state(name: str) -> Callable[[Request], Any]:
    """A dependency that hands out `request.state.<name>`, which the lifespan set (see
    `app.main.State`); the `Annotated` alias that wraps it says its type."""

    def state_value(request: Request) -> Any:
        return getattr(request.state, name)

    return state_value


SettingsDep = Annotated[Settings, Depends(from_state("settings"))]
EngineDep = Annotated[AsyncEngine, Depends(from_state("engine"))]
SessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(from_state("sessionmaker"))]
HeadRevisionDep = Annotated[str | None, Depends(from_state("head_revision"))]
