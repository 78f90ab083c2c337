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
3. the answer is looked up under (path, raw query string, Accept, FX state), where the
   FX state is what the answer's rates hang on (`FxService.current`: the latest rate held
   and today), for routes whose dependencies include the FX service;
4. found: sent as kept (or 304 when `If-None-Match` names its ETag), without the
   endpoint, its other dependencies (the session, the FX service …), its parameters'
   validation or the database;
5. not found: the endpoint answers as ever; a 200 whose body fits is kept, but only if
   the version and the FX state read again afterwards are unchanged and the FX service
   handed out no rate but the fresh one it held (`FxService.unsettled`: otherwise the
   answer may mix two states, or hold a stale or just-loaded rate: it is sent, not
   kept, and the next request keeps its own). Bigger bodies stream on untouched, and so
   does an answer its endpoint marked `Cache-Control: no-store` (one that changes without
   the data version moving, such as a forecast run's progress).

Every answer of such a route carries a strong `ETag` (a digest of its bytes),
`Cache-Control: no-cache` (`private, no-cache` behind a read key): clients and proxies
may keep it but must ask again before reuse, as an upload may land at any time, and the
304 makes asking cheap; `X-Data-Version`, the version it was computed at.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Hashable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.responses import StreamingResponse

from app.answers.store import Answer, AnswerStore
from app.answers.version import DataVersions
from app.fx.deps import get_fx
from app.fx.service import FxService

Handler = Callable[[Request], Coroutine[Any, Any, Response]]

# Headers of the endpoint's answer that are not kept: recomputed or per request.
_DROPPED = {b"content-length", b"etag", b"cache-control", b"vary", b"x-data-version"}


@dataclass
class Answers:
    """What the lifespan hands to cached routes: the store, the version reads, and how
    answers are marked for other caches."""

    store: AnswerStore
    versions: DataVersions
    private: bool  # reads need a key: no shared cache may keep them

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
        uses_fx = _depends_on(self.dependant, get_fx)
        # Guards of the route's own (beyond the lookup) must run first, inside FastAPI.
        own_guards = len(self.dependencies) > 1

        async def handler(request: Request) -> Response:
            request.scope[_USES_FX] = uses_fx
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
            if pending is None or response.status_code != 200 or _no_store(response):
                return response
            return await _keep(request, pending, response)

        return handler


_USES_FX = "orderlens.answers.uses_fx"
_PENDING = "orderlens.answers.pending"
_LOOKED = "orderlens.answers.looked_up"


@dataclass(frozen=True)
class _Pending:
    """A miss: what the answer about to be computed is kept under, if it holds."""

    answers: Answers
    key: Hashable
    version: int
    fx: FxService | None
    unsettled: int


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
    fx: FxService | None = request.state.fx if request.scope.get(_USES_FX) else None
    key = _key(request, fx)
    started = time.perf_counter()
    try:
        version = await answers.versions.fresh()
    except Exception:
        return  # the endpoint meets the database's trouble itself
    if (metrics := getattr(request.state, "metrics", None)) is not None:
        metrics.version_wait.observe(time.perf_counter() - started)
    kept = answers.store.get(key, version)
    if kept is not None:
        raise _Kept(_send(request, answers, kept))
    unsettled = fx.unsettled if fx is not None else 0
    request.scope[_PENDING] = _Pending(answers, key, version, fx, unsettled)


async def _keep(request: Request, pending: _Pending, response: Response) -> Response:
    """Keep a computed 200 if it holds (module docstring, 5) and send it marked."""
    answers, fx = pending.answers, pending.fx
    body = await _body(response, answers.store.max_entry)
    if body is None:
        return response  # too big to keep: streamed as it comes
    headers = tuple((k, v) for k, v in response.raw_headers if k not in _DROPPED)
    answer = Answer(body, headers, _etag(body), pending.version)
    try:
        unchanged = await answers.versions.fresh() == pending.version
    except Exception:
        unchanged = False
    if (
        unchanged
        and _key(request, fx) == pending.key
        and (fx is None or fx.unsettled == pending.unsettled)
    ):
        answers.store.put(pending.key, answer)
    return _send(request, answers, answer)


def _no_store(response: Response) -> bool:
    return "no-store" in response.headers.get("cache-control", "").lower()


def _depends_on(dependant: Dependant, call: Callable[..., Any]) -> bool:
    return any(d.call is call or _depends_on(d, call) for d in dependant.dependencies)


def _key(request: Request, fx: FxService | None) -> Hashable:
    scope = request.scope
    accept = request.headers.get("accept", "")
    return (scope["path"], scope["query_string"], accept, fx.current() if fx else None)


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
