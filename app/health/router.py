"""Liveness and readiness."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter
from pydantic import BaseModel

from app import db
from app.deps import EngineDep, HeadRevisionDep
from app.errors import ErrorResponse, ServiceUnavailable

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])

READINESS_TIMEOUT_SECONDS = 5.0


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: str
    schema_revision: str | None


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="Readiness: the database answers and its schema is at the latest migration",
    responses={503: {"model": ErrorResponse, "description": "Not ready"}},
)
async def readyz(engine: EngineDep, expected: HeadRevisionDep) -> Readiness:
    try:
        revision = await asyncio.wait_for(
            db.current_revision(engine), timeout=READINESS_TIMEOUT_SECONDS
        )
    except Exception as exc:  # any failure to reach the database means "not ready"
        log.warning("readiness: database unreachable (%s)", type(exc).__name__)
        raise ServiceUnavailable(
            "The database is unreachable.",
            code="not_ready",
            details={"database": "unreachable"},
        ) from None
    if revision != expected:
        raise ServiceUnavailable(
            "The database schema is not at the latest migration; run `orderlens migrate`.",
            code="not_ready",
            details={"database": "ok", "schema_revision": revision, "expected": expected},
        )
    return Readiness(status="ready", database="ok", schema_revision=revision)
