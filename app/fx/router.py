"""GET /fx/rates/latest and /fx/rates?date=."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.errors import DATABASE_DOWN, AppError, ErrorResponse
from app.fx.deps import FxDep
from app.fx.schemas import FxRate
from app.kit.params import IsoDate

router = APIRouter(prefix="/fx", tags=["fx"])  # rates are stored: see UNAVAILABLE


UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {
        "model": ErrorResponse,
        "description": f"`fx_unavailable`: no rate known; or {DATABASE_DOWN}",
    }
}


class FutureDate(AppError):
    status_code = 422
    code = "date_in_future"


@router.get("/rates/latest", summary="The current BRL→USD rate", responses=UNAVAILABLE)
async def latest(fx: FxDep) -> FxRate:
    return FxRate.of(await fx.latest())


@router.get(
    "/rates",
    summary="The BRL→USD rate of a day (or of the latest earlier published day)",
    responses={
        **UNAVAILABLE,
        404: {"model": ErrorResponse, "description": "`rate_not_found`"},
        422: {"model": ErrorResponse, "description": "Malformed or future date"},
    },
)
async def on_day(
    fx: FxDep, day: Annotated[IsoDate, Query(alias="date", description="YYYY-MM-DD")]
) -> FxRate:
    if day > fx.today():
        raise FutureDate(f"{day} is in the future: no rate is published for it yet.")
    return FxRate.of(await fx.on(day))
