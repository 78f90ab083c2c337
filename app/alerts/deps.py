"""The alerter, as a request dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.alerts.service import Alerter
from app.kit.deps import from_state

AlerterDep = Annotated[Alerter, Depends(from_state("alerts"))]
