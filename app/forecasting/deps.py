"""The forecast runner, as a request dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.forecasting.runs import Runner
from app.kit.deps import from_state

ForecastRunnerDep = Annotated[Runner, Depends(from_state("forecasts"))]
