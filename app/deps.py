"""What a request may be handed from the lifespan's state, as dependencies: handlers name
what they need (`EngineDep`, `SettingsDep` …) and never read `request.state` themselves.
The FX service's is `app.fx.deps.FxDep`, the metrics' `app.metrics.MetricsDep`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.alerts.service import Alerter
from app.config import Settings
from app.forecasting.runs import Runner


def get_settings(request: Request) -> Settings:
    settings: Settings = request.state.settings
    return settings


def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.state.engine
    return engine


def get_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    sessionmaker: async_sessionmaker[AsyncSession] = request.state.sessionmaker
    return sessionmaker


def get_head_revision(request: Request) -> str | None:
    revision: str | None = request.state.head_revision
    return revision


def get_alerter(request: Request) -> Alerter:
    alerter: Alerter = request.state.alerts
    return alerter


def get_forecast_runner(request: Request) -> Runner:
    runner: Runner = request.state.forecasts
    return runner


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
SessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessionmaker)]
HeadRevisionDep = Annotated[str | None, Depends(get_head_revision)]
ForecastRunnerDep = Annotated[Runner, Depends(get_forecast_runner)]
AlerterDep = Annotated[Alerter, Depends(get_alerter)]
