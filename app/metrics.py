"""Prometheus metrics: one registry per app (tests build many apps), the families the
service records, the connection pools read at scrape time, and `GET /metrics`.

Recording is a dict lookup and an add under prometheus_client's own short lock: nothing
is held across an await. A scrape reads the freshness figures from the database (at most
FRESHNESS_READ_SECONDS); nothing else here touches the database or the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from app.alerts.deps import AlerterDep
from app.alerts.service import freshness_events
from app.freshness import service as freshness
from app.freshness.service import Freshness
from app.kit.deps import EngineDep, SettingsDep

log = logging.getLogger(__name__)

# The route label of requests that matched no route: raw paths would make the number of
# series unbounded.
UNMATCHED_ROUTE = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
INGEST_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
FX_BUCKETS = (0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
STALL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
# How often the event loop's lag is sampled: a stall longer than this is seen whole.
LAG_PROBE_SECONDS = 0.1
UPLOAD_OUTCOMES = ("inserted", "updated", "unchanged", "rejected")


class PoolCollector(Collector):
    """Connections of the SQLAlchemy pools, read when Prometheus scrapes."""

    def __init__(self) -> None:
        self._engines: dict[str, AsyncEngine] = {}

    def watch(self, name: str, engine: AsyncEngine) -> None:
        self._engines[name] = engine

    def forget(self, name: str) -> None:
        self._engines.pop(name, None)

    def collect(self) -> Iterable[Metric]:
        checked_out = GaugeMetricFamily(
            "orderlens_db_pool_checked_out",
            "Connections in use (checked out of the pool).",
            labels=["pool"],
        )
        idle = GaugeMetricFamily(
            "orderlens_db_pool_idle", "Open connections waiting in the pool.", labels=["pool"]
        )
        size = GaugeMetricFamily(
            "orderlens_db_pool_size",
            "Connections the pool keeps (it may open as many again as overflow).",
            labels=["pool"],
        )
        for name, engine in list(self._engines.items()):
            pool = engine.pool
            if not isinstance(pool, QueuePool):
                continue
            checked_out.add_metric([name], pool.checkedout())
            idle.add_metric([name], pool.checkedin())
            size.add_metric([name], pool.size())
        yield from (checked_out, idle, size)


class FreshnessCollector(Collector):
    """How old the data and each warehouse consumer's copy are (GET /freshness): the
    snapshot the last scrape read from the database (`/metrics` reads it first), none
    before one was read or when the database did not answer."""

    def __init__(self) -> None:
        self.now: Freshness | None = None

    def collect(self) -> Iterable[Metric]:
        now = self.now
        if now is None:
            return
        sla = GaugeMetricFamily("orderlens_freshness_sla_seconds", "FRESHNESS_SLA_SECONDS.")
        sla.add_metric([], now.sla_seconds)
        data_age = GaugeMetricFamily(
            "orderlens_data_age_seconds",
            "Seconds since the last upload that succeeded (absent before the first).",
        )
        data_stale = GaugeMetricFamily(
            "orderlens_data_stale", "1 when no upload succeeded within the SLA, else 0."
        )
        forecast_age = GaugeMetricFamily(
            "orderlens_forecast_age_seconds",
            "Seconds since the last forecast run finished (absent before the first).",
        )
        consumer_age = GaugeMetricFamily(
            "orderlens_consumer_age_seconds",
            "Seconds since each consumer's last finished read of a feed, per dataset.",
            labels=["consumer", "dataset"],
        )
        consumer_stale = GaugeMetricFamily(
            "orderlens_consumer_stale",
            "1 when a consumer's last finished read is older than the SLA (or none), else 0.",
            labels=["consumer", "dataset"],
        )
        if now.age_seconds is not None:
            data_age.add_metric([], now.age_seconds)
        data_stale.add_metric([], int(now.stale))
        if now.forecast_age_seconds is not None:
            forecast_age.add_metric([], now.forecast_age_seconds)
        for c in now.consumers:
            labels = [c.consumer, c.dataset or ""]
            if c.age_seconds is not None:
                consumer_age.add_metric(labels, c.age_seconds)
            consumer_stale.add_metric(labels, int(c.stale))
        yield from (sla, data_age, data_stale, forecast_age, consumer_age, consumer_stale)


class Metrics:
    """Every metric family of one app, on its own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # Each section below declares its families beside the methods that record them.
        self._http_families()
        self._upload_families()
        self._fx_families()
        self._stall_families()
        self._http_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.pools = PoolCollector()
        self.registry.register(self.pools)
        self.freshness = FreshnessCollector()
        self.registry.register(self.freshness)
        self._scraped = self.registry
        # Several workers (app/cli/workers.py): every process writes its counts to files in
        # this folder, and a scrape answered by any of them sums them all. The pool
        # gauges are those of the worker that answers.
        if folder := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            self._scraped = CollectorRegistry()
            multiprocess.MultiProcessCollector(self._scraped, path=folder)  # type: ignore[no-untyped-call]
            self._scraped.register(self.pools)
            self._scraped.register(self.freshness)

    def _counter(self, name: str, documentation: str, labels: tuple[str, ...]) -> Counter:
        return Counter(name, documentation, labels, registry=self.registry)

    def _histogram(
        self, name: str, documentation: str, labels: tuple[str, ...], buckets: tuple[float, ...]
    ) -> Histogram:
        return Histogram(name, documentation, labels, buckets=buckets, registry=self.registry)

    # --- HTTP ------------------------------------------------------------------------------

    def _http_families(self) -> None:
        self.http_requests = self._counter(
            "orderlens_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ("method", "route", "status"),
        )
        self.http_duration = self._histogram(
            "orderlens_http_request_duration_seconds",
            "Time from the request's arrival to the last byte of its answer.",
            ("method", "route", "status"),
            HTTP_BUCKETS,
        )

    def request_done(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method if method in METHODS else "other", route, status)
        children = self._http_children.get(key)
        if children is None:
            # `.labels()` validates and locks; its children are kept (the keys are bounded).
            labels = (key[0], route, str(status))
            children = (self.http_requests.labels(*labels), self.http_duration.labels(*labels))
            self._http_children[key] = children
        count, duration = children
        count.inc()
        duration.observe(seconds)

    # --- uploads ---------------------------------------------------------------------------

    def _upload_families(self) -> None:
        self.upload_rows = self._counter(
            "orderlens_upload_rows",
            "Rows of succeeded uploads by outcome (the outcomes add up to the rows read).",
            ("kind", "outcome"),
        )
        self.upload_rejects = self._counter(
            "orderlens_upload_rejects",
            "Rejected rows of succeeded uploads by reject code.",
            ("kind", "code"),
        )
        self.ingest_duration = self._histogram(
            "orderlens_ingest_duration_seconds",
            "Time to receive, check and load one upload, by kind and result.",
            ("kind", "result"),
            INGEST_BUCKETS,
        )

    def ingest_done(
        self, kind: str, result: str, seconds: float, report: Mapping[str, Any] | None = None
    ) -> None:
        """One upload ended; `report` (its counts) when it succeeded."""
        self.ingest_duration.labels(kind, result).observe(seconds)
        if report is None:
            return
        for outcome in UPLOAD_OUTCOMES:
            self.upload_rows.labels(kind, outcome).inc(report[f"rows_{outcome}"])
        for code, n in (report.get("rejects_by_code") or {}).items():
            self.upload_rejects.labels(kind, code).inc(n)

    # --- FX --------------------------------------------------------------------------------

    def _fx_families(self) -> None:
        self.fx_upstream = self._counter(
            "orderlens_fx_upstream_calls",
            "Calls to the FX provider (retries included in one call), by outcome.",
            ("provider", "call", "outcome"),
        )
        self.fx_upstream_duration = self._histogram(
            "orderlens_fx_upstream_duration_seconds",
            "Time of one call to the FX provider, retries included.",
            ("provider", "call"),
            FX_BUCKETS,
        )
        self.fx_errors = self._counter(
            "orderlens_fx_errors",
            "FX provider failures by kind: transient, configuration, invalid_response, unexpected.",
            ("provider", "error"),
        )
        self.fx_fallbacks = self._counter(
            "orderlens_fx_fallbacks",
            "Answers without a fresh rate: the last known rate served stale, or none known.",
            ("provider", "result"),
        )
        self.fx_cache_hits = self._counter(
            "orderlens_fx_cache_hits",
            "Rates found in the cache, by kind (latest, historical) and layer (memory, table).",
            ("kind", "layer"),
        )
        self.fx_cache_misses = self._counter(
            "orderlens_fx_cache_misses",
            "Rate loads that found no usable rate cached (one per single-flight load).",
            ("kind",),
        )

    def fx_cache(self, kind: str, layer: str | None) -> None:
        """A rate lookup: found in `layer`, or a miss when None."""
        if layer is None:
            self.fx_cache_misses.labels(kind).inc()
        else:
            self.fx_cache_hits.labels(kind, layer).inc()

    def fx_call(
        self, provider: str, call: str, outcome: str, seconds: float, error: str | None = None
    ) -> None:
        self.fx_upstream.labels(provider, call, outcome).inc()
        self.fx_upstream_duration.labels(provider, call).observe(seconds)
        if error is not None:
            self.fx_errors.labels(provider, error).inc()

    def fx_fallback(self, provider: str, result: str) -> None:
        self.fx_fallbacks.labels(provider, result).inc()

    # --- stalls ------------------------------------------------------------------------------

    def _stall_families(self) -> None:
        self.loop_lag = self._histogram(
            "orderlens_event_loop_lag_seconds",
            "How late the event loop ran a callback due now (sampled every 0.1 s): the"
            " time every request in flight waited for whatever held the loop.",
            (),
            STALL_BUCKETS,
        )
        self.gc_pause = self._histogram(
            "orderlens_gc_pause_seconds",
            "Garbage collections of this process, by generation: each one stops the loop.",
            ("generation",),
            STALL_BUCKETS,
        )
        self.version_wait = self._histogram(
            "orderlens_answer_version_wait_seconds",
            "How long a read waited for a fresh read of the data version (the round trip"
            " that makes a kept answer never older than a committed upload).",
            (),
            STALL_BUCKETS,
        )

    @contextlib.asynccontextmanager
    async def watching_stalls(self) -> AsyncIterator[None]:
        """While the service runs: sample the event loop's lag, and time each garbage
        collection, into the two stall histograms (issue 25: what a p99 is made of)."""
        loop = asyncio.get_running_loop()
        collecting: list[float] = []

        def on_gc(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                collecting.append(time.perf_counter())
            elif collecting:
                pause = time.perf_counter() - collecting.pop()
                self.gc_pause.labels(str(info.get("generation", -1))).observe(pause)

        async def probe() -> None:
            while True:
                due = loop.time() + LAG_PROBE_SECONDS
                await asyncio.sleep(LAG_PROBE_SECONDS)
                self.loop_lag.observe(max(0.0, loop.time() - due))

        gc.callbacks.append(on_gc)
        task = asyncio.create_task(probe(), name="orderlens loop-lag probe")
        try:
            yield
        finally:
            task.cancel()
            gc.callbacks.remove(on_gc)

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The registry in the format the scraper asked for (text 0.0.4 by default)."""
        encode, content_type = choose_encoder(accept)
        return encode(self._scraped), content_type


def route_label(scope: Mapping[str, Any]) -> str:
    """The matched route's template (`/uploads/{upload_id}`), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


router = APIRouter(tags=["health"])

# A scrape waits at most this long for the freshness figures, then answers without them.
FRESHNESS_READ_SECONDS = 2.0


async def _freshness(engine: AsyncEngine, sla_seconds: int) -> Freshness | None:
    """The freshness figures for the gauges, or None when the database does not answer
    in time: a scrape never fails for them."""
    try:
        return await asyncio.wait_for(freshness.read(engine, sla_seconds), FRESHNESS_READ_SECONDS)
    except Exception as exc:  # the database gone, slow, or refusing: gauges left out
        log.warning("freshness gauges left out of this scrape: %s: %s", type(exc).__name__, exc)
        return None


def get_metrics(request: Request) -> Metrics:
    registry: Metrics = request.state.metrics
    return registry


MetricsDep = Annotated[Metrics, Depends(get_metrics)]


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_PLAIN_0_0_4: {"schema": {"type": "string"}}}}},
)
async def metrics(
    request: Request,
    registry: MetricsDep,
    engine: EngineDep,
    settings: SettingsDep,
    alerter: AlerterDep,
) -> Response:
    now = registry.freshness.now = await _freshness(engine, settings.freshness_sla_seconds)
    if now is not None:  # a scraper is a watchdog: stale past the SLA is told once
        alerter.soon(freshness_events(now))
    body, content_type = registry.exposition(request.headers.get("accept", ""))
    return Response(body, headers={"Content-Type": content_type})
