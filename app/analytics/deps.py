"""What a read in BRL and USD is handed, as one dependency (`UsdReadDep`): its question
(the session, the FX service, the FX mode and period of its query) and the format asked
for. Its query parameters are listed in that order wherever a handler names it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from app.analytics.service import UsdQuery
from app.db import SessionDep
from app.fx.deps import FxDep
from app.kit.negotiation import Format, FormatDep
from app.kit.params import ViewDep


@dataclass(frozen=True)
class UsdRead:
    query: UsdQuery
    fmt: Format


async def usd_read(session: SessionDep, fx: FxDep, fmt: FormatDep, view: ViewDep) -> UsdRead:
    return UsdRead(UsdQuery(session, fx, view.mode, view.period), fmt)


UsdReadDep = Annotated[UsdRead, Depends(usd_read)]
