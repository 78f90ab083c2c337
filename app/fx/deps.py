"""The FX service, as a request dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.answers import keys
from app.fx.service import FxService


def get_fx(request: Request) -> FxService:
    service: FxService = request.state.fx
    return service


# Answers that convert with FX hang on the rate the service holds (`FxService.current`),
# and are not kept while it hands out another (`FxService.unsettled`).
keys.register(get_fx, get_fx)

FxDep = Annotated[FxService, Depends(get_fx)]
