"""`CachedRead`: the route class that makes a read endpoint answer from memory while the
data it answers about holds.

A read endpoint opts in with one line, on its router or on the route:

    router = APIRouter(route_class=CachedRead)                  # every route of it
    router.add_api_route(path, endpoint, route_class_override=CachedRead)  # one route

What it does to each GET of the route:
1. the guards run first: under `READ_ACCESS=key` (or with dependencies of the route's
   own) the lookup is a dependency appended after them, so the read key is checked
   before anything is served; with public reads the route has no guard and the lookup
   runs before FastAPI solves anything;
2. the data version is read fresh (`DataVersions.fresh`: a read begun after the request
   arrived, so an upload committed before it, in any worker, is never missed);
3. the answer is looked up under (path, raw query string, Accept, key parts), where the
   key parts are what else the answer hangs on, for routes whose dependencies include
   one registered in `keys.py` (`KeyPart.current`; FX registers its service: the latest
   rate held, and today);
4. found: sent as kept (or 304 when `If-None-Match` names its ETag), without the
   endpoint, its other dependencies (the session, the FX service …), its parameters'
   validation or the database;
5. not found: the endpoint answers as ever; a 200 whose body fits is kept, but only if
   the version and the key parts read again afterwards are unchanged and no part handed
   out anything but what it held (`KeyPart.unsettled`; for FX, a stale or just-loaded
   rate): otherwise the answer may mix two states, and it is sent, not kept (the next
   request keeps its own). Bigger bodies stream on untouched, and so does an answer its
   endpoint marked `Cache-Control: no-store` (one that changes without the data version
   moving, such as a forecast run's progress).

Every answer of such a route carries a strong `ETag` (a digest of its bytes),
`Cache-Control: no-cache` (`private, no-cache` behind a read key): clients and proxies
may keep it but must ask again before reuse, as an upload may land at any time, and the
304 makes asking cheap; `X-Data-Version`, the version it was computed at.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Coroutine, Hashable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from starlette.responses import StreamingResponse

from app.answers import keys
from app.answers.keys import KeyPart
from app.answers.store import Answer, AnswerStore
from app.answers.version import DataVersions

Handler = Callable[[Request], Coroutine[Any, Any, Response]]

# Headers of the endpoint's answer that are not kept: recomputed or per request.
_DROPPED = {b"content-length", b"etag", b"cache-control", b"vary", b"x-data-version"}


@dataclass
class _Flight:
    """One answer being computed for the requests that asked for it meanwhile."""

    version: int
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Flights:
    """Answers being computed, by key. A miss under load is one computation, not one
    per request: the first request to miss a key computes it (it leads the flight) and
    the others that miss it at the same version wait for its answer to be kept.

    Without it, every answer dropped by an upload (or asked for the first time) was
    computed by every request in flight at once: 32 clients meant 32 copies of the same
    queries queued for the pool, and the p99 of a kept answer was that queue (issue 25).
    Keys whose answer is never kept at a version (too big to keep, or `no-store`) are
    remembered, so that their requests compute side by side instead of in turns."""

    def __init__(self, remembered: int = 1024) -> None:
        self._flights: dict[Hashable, _Flight] = {}
        self._streamed: OrderedDict[Hashable, int] = OrderedDict()
        self._remembered = remembered

    def joining(self, key: Hashable, version: int) -> _Flight | None:
        """The flight to wait for, if one computes this key at this version."""
        flight = self._flights.get(key)
        if flight is None or flight.version != version or flight.done.is_set():
            return None
        return flight

    def lead(self, key: Hashable, version: int) -> _Flight | None:
        """A new flight for this request to lead; None when the key's answer is not
        kept at this version (nobody waits for it)."""
        if self._streamed.get(key) == version:
            return None
        flight = self._flights[key] = _Flight(version)
        return flight

    def land(self, key: Hashable, flight: _Flight, *, streamed: bool) -> None:
        """The leader is done: its answer is kept, or not to be (`streamed`)."""
        flight.done.set()
        if self._flights.get(key) is flight:
            del self._flights[key]
        if streamed:
            self._streamed[key] = flight.version
            self._streamed.move_to_end(key)
            while len(self._streamed) > self._remembered:
                self._streamed.popitem(last=False)


# How long a request waits for another's computation of its answer before computing it
# itself (a leader whose database hangs must not hold everyone behind it forever).
FLIGHT_WAIT_SECONDS = 10.0


@dataclass
class Answers:
    """What the lifespan hands to cached routes: the store, the version reads, the
    answers being computed, and how answers are marked for other caches."""

    store: AnswerStore
    versions: DataVersions
    private: bool  # reads need a key: no shared cache may keep them
    flights: Flights = field(default_factory=Flights)

    @property
    def cache_control(self) -> bytes:
        return b"private, no-cache" if self.private else b"no-cache"

    @property
    def vary(self) -> bytes:
        return b"Accept, X-API-Key" if self.private else b"Accept"


class CachedRead(APIRoute):
    """An APIRoute whose GET answers are kept per data version (module docstring)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        # Reads only: any other method of the router (a POST that starts a run) is a plain
        # route. The lookup is the route's last own dependency: the guards of the router
        # it is included in (the read key) run before it, the endpoint's own parameters
        # after.
        methods = kwargs.get("methods") or ["GET"]
        self._reads = {m.upper() for m in methods} <= {"GET", "HEAD"}
        if self._reads:
            kwargs["dependencies"] = [*(kwargs.get("dependencies") or []), Depends(_look_up)]
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Handler:
        compute = super().get_route_handler()
        if not self._reads:
            return compute
        parts = keys.parts_of(self.dependant)
        # Guards of the route's own (beyond the lookup) must run first, inside FastAPI.
        own_guards = len(self.dependencies) > 1

        async def handler(request: Request) -> Response:
            request.scope[_PARTS] = parts
            try:
                return await answer(request)
            finally:
                pending: _Pending | None = request.scope.get(_PENDING)
                if pending is not None and pending.flight is not None:
                    streamed = request.scope.get(_STREAMED, False)
                    pending.answers.flights.land(pending.key, pending.flight, streamed=streamed)

        async def answer(request: Request) -> Response:
            try:
                answers: Answers | None = getattr(request.state, "answers", None)
                if answers is not None and not answers.private and not own_guards:
                    # Public reads have no guard (the read key is the only one a data
                    # router is included with): look up before FastAPI solves anything.
                    await _look_up(request)
                response = await compute(request)
            except _Kept as kept:
                return kept.response
            pending: _Pending | None = request.scope.get(_PENDING)
            if pending is None or response.status_code != 200:
                return response
            if _no_store(response):
                request.scope[_STREAMED] = True
                return response
            return await _keep(request, pending, response)

        return handler


_PARTS = "orderlens.answers.key_parts"
_PENDING = "orderlens.answers.pending"
_LOOKED = "orderlens.answers.looked_up"
_STREAMED = "orderlens.answers.streamed"


@dataclass(frozen=True)
class _Pending:
    """A miss: what the answer about to be computed is kept under, if it holds."""

    answers: Answers
    key: Hashable
    version: int
    parts: tuple[KeyPart, ...]
    unsettled: tuple[int, ...]
    flight: _Flight | None  # the flight this request leads, if any


class _Kept(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


async def _look_up(request: Request) -> None:
    """The kept answer, raised as `_Kept`; or, on a miss, what to keep it under (once
    per request: the handler may have looked already)."""
    answers: Answers | None = getattr(request.state, "answers", None)
    if answers is None or request.scope.get(_LOOKED):
        return
    request.scope[_LOOKED] = True
    parts = tuple(part(request) for part in request.scope.get(_PARTS, ()))
    key = _key(request, parts)
    started = time.perf_counter()
    try:
        version = await answers.versions.fresh()
    except Exception:
        return  # the endpoint meets the database's trouble itself
    if (metrics := getattr(request.state, "metrics", None)) is not None:
        metrics.version_wait.observe(time.perf_counter() - started)
    kept = answers.store.get(key, version)
    if kept is None and (flight := answers.flights.joining(key, version)) is not None:
        # Another request computes this answer: wait for it to be kept.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FLIGHT_WAIT_SECONDS):
                await flight.done.wait()
        kept = answers.store.get(key, version)
        leading = None  # not kept after all (or too slow): computed here, unled
    else:
        leading = answers.flights.lead(key, version) if kept is None else None
    if kept is not None:
        raise _Kept(_send(request, answers, kept))
    unsettled = _unsettled(parts)
    request.scope[_PENDING] = _Pending(answers, key, version, parts, unsettled, leading)


async def _keep(request: Request, pending: _Pending, response: Response) -> Response:
    """Keep a computed 200 if it holds (module docstring, 5) and send it marked."""
    answers, parts = pending.answers, pending.parts
    body = await _body(response, answers.store.max_entry)
    if body is None:
        request.scope[_STREAMED] = True
        return response  # too big to keep: streamed as it comes
    headers = tuple((k, v) for k, v in response.raw_headers if k not in _DROPPED)
    answer = Answer(body, headers, _etag(body), pending.version)
    try:
        unchanged = await answers.versions.fresh() == pending.version
    except Exception:
        unchanged = False
    if unchanged and _key(request, parts) == pending.key and _unsettled(parts) == pending.unsettled:
        answers.store.put(pending.key, answer)
    return _send(request, answers, answer)


def _no_store(response: Response) -> bool:
    return "no-store" in response.headers.get("cache-control", "").lower()


def _key(request: Request, parts: tuple[KeyPart, ...]) -> Hashable:
    scope = request.scope
    accept = request.headers.get("accept", "")
    return (scope["path"], scope["query_string"], accept, tuple(p.current() for p in parts))


def _unsettled(parts: tuple[KeyPart, ...]) -> tuple[int, ...]:
    return tuple(p.unsettled for p in parts)


def _etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def _matches(if_none_match: str, etag: str) -> bool:
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def _send(request: Request, answers: Answers, answer: Answer) -> Response:
    marks = [
        (b"etag", answer.etag.encode()),
        (b"cache-control", answers.cache_control),
        (b"vary", answers.vary),
        (b"x-data-version", str(answer.version).encode()),
    ]
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and _matches(if_none_match, answer.etag):
        response = Response(status_code=304)
        response.raw_headers = marks
        return response
    response = Response(status_code=200)
    response.body = answer.body
    response.raw_headers = [
        *answer.headers,
        (b"content-length", str(len(answer.body)).encode()),
        *marks,
    ]
    return response


async def _body(response: Response, limit: int) -> bytes | None:
    """The whole body if it is at most `limit` bytes; None (and `response` left to
    stream everything, the part read included) if bigger."""
    if not isinstance(response, StreamingResponse):
        return bytes(response.body)
    chunks: list[bytes] = []
    size = 0
    iterator = aiter(response.body_iterator)
    async for chunk in iterator:
        data = chunk.encode() if isinstance(chunk, str) else bytes(chunk)
        chunks.append(data)
        size += len(data)
        if size > limit:
            response.body_iterator = _replay(chunks, iterator)
            return None
    return b"".join(chunks)


async def _replay(head: list[bytes], rest: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    try:
        for chunk in head:
            yield chunk
        async for chunk in rest:
            yield chunk.encode() if isinstance(chunk, str) else bytes(chunk)
    finally:
        close = getattr(rest, "aclose", None)
        if close is not None:
            await close()
