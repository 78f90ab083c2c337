"""The FX service, as a request dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.fx.service import FxService


def get_fx(request: Request) -> FxService:
    service: FxService = request.state.fx
    return service


FxDep = Annotated[FxService, Depends(get_fx)]
