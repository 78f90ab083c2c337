"""The ASGI app: `create_app()` and the lifespan that owns the engine and HTTP client."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypedDict

import httpx
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app import __version__, db, logs, middleware
from app.alerts.router import router as alerts_router
from app.alerts.service import Alerter
from app.analytics.router import router as analytics_router
from app.answers.route import Answers
from app.answers.store import AnswerStore
from app.answers.version import DataVersions
from app.catalog.router import router as products_router
from app.config import Access, Settings, get_settings
from app.dashboard import router as dashboard
from app.errors import ErrorResponse, install_error_handlers
from app.exports.feeds_router import router as feeds_router
from app.exports.router import router as exports_router
from app.forecasting.router import router as forecasts_router
from app.forecasting.runs import Runner
from app.freshness.router import router as freshness_router
from app.fx import service as fx_service
from app.fx.router import router as fx_router
from app.fx.service import FxService
from app.health.router import router as health_router
from app.kit import read_ahead, redoc
from app.metrics import Metrics
from app.metrics import router as metrics_router
from app.orders.router import router as orders_router
from app.security import (
    ReadKeyDep,
    api_key_file,
    api_key_header,
    public_reads_warning,
    resolve_api_key,
)
from app.uploads.history_router import router as uploads_history_router
from app.uploads.router import router as uploads_router

log = logging.getLogger(__name__)

DESCRIPTION = """\
Upload CSV files of products and orders, get them validated and loaded with every
rejected row kept, and read the merged order view, KPIs and insights as JSON or CSV,
with BRL converted to USD at a cached, stated rate.

Writes need the `X-API-Key` header. Every error answers
`{"error": {"code", "message", "details"}}`.
"""


class State(TypedDict):
    """What the lifespan hands to every request as `request.state`."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    http: httpx.AsyncClient
    fx: FxService
    api_key: SecretStr
    head_revision: str | None
    metrics: Metrics
    answers: Answers | None
    forecasts: Runner
    alerts: Alerter


@contextmanager
def frozen_heap() -> Iterator[None]:
    """While serving, keep every object startup made out of the collector's full passes.

    A request that awaits (the data version, the database) outlives the young
    generations, so its garbage reaches the oldest one, and full collections follow: each
    walked the whole heap the imports built, 100 ms every 0.3 s or so under 32
    connections, and that was the p99 of every kept answer (issue 15). Frozen, a full
    pass walks only what serving made. Unfrozen at shutdown, so that an app built and
    stopped in a test leaves nothing behind that the collector cannot reach."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def create_app(
    settings: Settings | None = None, *, http_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """Build the service. Nothing connects until the lifespan starts. `http_transport`
    replaces the network under the outgoing HTTP client (tests fake the FX provider)."""
    settings = settings or get_settings()
    logs.configure(settings)
    metrics = Metrics()  # per app: tests build many, the default registry is global

    # Swagger UI and ReDoc served from the installed package: /docs works with no internet.
    # ReDoc's page is app/kit/redoc.py's, which keeps its bundle from calling a CDN.
    app = FastAPIOffline(
        title="Orderlens",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lambda _app: _serving(settings, metrics, http_transport),
        redoc_url=None,
        responses={422: {"model": ErrorResponse, "description": "Invalid request"}},
    )
    install_error_handlers(app)
    middleware.install(app, metrics)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["X-API-Key", "Content-Type"],
            expose_headers=[middleware.REQUEST_ID_HEADER],
        )
    app.include_router(health_router)
    app.include_router(redoc.router)
    app.include_router(metrics_router, **_guard(settings.metrics_access))
    # Data reads: open, or behind a read key (docs/API.md, "Access"); writes check their own key.
    reads = _guard(settings.read_access or Access.PUBLIC)
    for data_router in (
        uploads_router,
        uploads_history_router,
        fx_router,
        analytics_router,
        forecasts_router,
        orders_router,
        products_router,
        exports_router,
        feeds_router,
        freshness_router,
        alerts_router,
    ):
        app.include_router(data_router, **reads)
    app.include_router(dashboard.router)
    app.mount(dashboard.STATIC_URL, StaticFiles(directory=dashboard.STATIC_DIR), name="dashboard")
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


@asynccontextmanager
async def _serving(
    settings: Settings, metrics: Metrics, http_transport: httpx.AsyncBaseTransport | None
) -> AsyncIterator[State]:
    """The app's lifespan: the database and its engines, the API key, the kept answers,
    the forecast runner, the alerter and the HTTP client, handed to every request as
    `State`; all let go at shutdown."""
    read_ahead.widen()  # before the first upload's connection
    database = await db.open_database_async(settings)
    engine = db.create_engine(
        database.url,
        pool_size=settings.db_pool_size,
        pool_timeout=settings.db_pool_timeout_seconds,
    )
    # FX reads and writes its rates on a pool of its own: requests that hold a
    # connection while they wait for a rate must not starve the one fetching it.
    fx_engine = db.create_engine(database.url, pool_size=settings.fx_pool_size)
    metrics.pools.watch("main", engine)
    metrics.pools.watch("fx", fx_engine)
    api_key = _api_key(settings)
    answers = _answers(settings, database)
    forecasts = Runner()
    alerter = Alerter(
        engine,
        tuple(url.get_secret_value() for url in settings.alert_urls),
        settings.alert_timeout_seconds,
    )
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0), transport=http_transport) as http:
        try:
            with frozen_heap():
                async with metrics.watching_stalls():
                    yield State(
                        settings=settings,
                        engine=engine,
                        sessionmaker=db.create_sessionmaker(engine),
                        http=http,
                        fx=fx_service.build(settings, http=http, engine=fx_engine, metrics=metrics),
                        api_key=api_key,
                        head_revision=db.head_revision(),
                        metrics=metrics,
                        answers=answers,
                        forecasts=forecasts,
                        alerts=alerter,
                    )
        finally:
            await forecasts.close()
            await alerter.close()
            if answers is not None:
                await answers.versions.close()
            metrics.pools.forget("main")
            metrics.pools.forget("fx")
            await engine.dispose()
            await fx_engine.dispose()
            await asyncio.to_thread(database.release)


def _api_key(settings: Settings) -> SecretStr:
    """The write key (generated and kept the first time), said in the log when it is
    new; and a warning when reads are public on an address others reach."""
    key_existed = api_key_file(settings).exists()
    api_key, generated = resolve_api_key(settings)
    if generated and not key_existed:  # `generated` is also true for a reused key
        log.info("API key generated; it is kept in %s", api_key_file(settings))
    if warning := public_reads_warning(settings):
        log.warning(warning)
    return api_key


def _answers(settings: Settings, database: db.Database) -> Answers | None:
    """The kept read answers (none when ANSWER_CACHE_BYTES is 0)."""
    if not settings.answer_cache_bytes:
        return None
    return Answers(
        store=AnswerStore(settings.answer_cache_bytes),
        versions=DataVersions(db.asyncpg_dsn(database.url)),
        private=settings.read_access is Access.KEY,
    )


def _guard(access: Access) -> dict[str, Any]:
    """`include_router` arguments that put routes behind a read key, or nothing."""
    if access is Access.PUBLIC:
        return {}
    return {
        "dependencies": [ReadKeyDep],
        "responses": {401: {"model": ErrorResponse, "description": "Missing or wrong X-API-Key"}},
    }


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with the API-key scheme declared even before a route uses it."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes.setdefault(
            api_key_header.scheme_name,
            api_key_header.model.model_dump(mode="json", by_alias=True, exclude_none=True),
        )
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
        for operations in schema.get("paths", {}).values():
            for method, operation in operations.items():
                if method != "get" and operation.get("security"):
                    # A key of READ_API_KEYS on a write: known, but it may not write.
                    operation["responses"].setdefault(
                        "403", {"description": "A read key: it may not write", "content": error}
                    )
        app.openapi_schema = schema
    return app.openapi_schema


app = create_app()
