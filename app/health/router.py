"""Liveness and readiness."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from app import db
from app.errors import ErrorResponse, ServiceUnavailable
from app.kit.deps import EngineDep, HeadRevisionDep

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])

READINESS_TIMEOUT_SECONDS = 5.0


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: str
    schema_revision: str | None


async def _probe(engine: AsyncEngine) -> tuple[int, str | None]:
    """The server's version and the schema revision (the version first: an old server
    is refused before its schema, which `orderlens serve` never migrated, is judged)."""
    return await db.server_version_num(engine), await db.current_revision(engine)


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
        version_num, revision = await asyncio.wait_for(
            _probe(engine), timeout=READINESS_TIMEOUT_SECONDS
        )
    except Exception as exc:  # any failure to reach the database means "not ready"
        log.warning("readiness: database unreachable (%s)", type(exc).__name__)
        raise ServiceUnavailable(
            "The database is unreachable.",
            code="not_ready",
            details={"database": "unreachable"},
        ) from None
    try:
        db.check_server_version(version_num)
    except db.UnsupportedServer as exc:
        raise ServiceUnavailable(
            str(exc),
            code="unsupported_server",
            details={
                "database": "ok",
                "server_version": exc.version,
                "supported_versions": db.supported_majors(),
            },
        ) from None
    if revision != expected:
        raise ServiceUnavailable(
            "The database schema is not at the latest migration; run `orderlens migrate`.",
            code="not_ready",
            details={"database": "ok", "schema_revision": revision, "expected": expected},
        )
    return Readiness(status="ready", database="ok", schema_revision=revision)
