"""Key parts: the read cache hangs answers on what a domain registers (app/answers/keys.py),
and imports no domain itself; FX supplies its part by registering its dependency."""

from __future__ import annotations

import ast
from collections.abc import AsyncIterator, Hashable
from pathlib import Path
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.routing import APIRoute
from starlette.types import Receive, Scope, Send

from app.answers import keys
from app.answers.route import Answers, CachedRead
from app.answers.store import AnswerStore
from app.answers.version import DataVersions
from app.fx.deps import FxDep, get_fx

APP = Path(__file__).resolve().parents[2] / "app"


def _imported(path: Path) -> set[str]:
    """The modules a file imports (`from app import fx` as `app.fx`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_the_read_cache_imports_no_domain() -> None:
    """Not FX, nor any other package with endpoints of its own: domains hand the cache
    their key parts, it never reaches for them."""
    domains = {p.parent.name for p in APP.glob("*/router.py")}
    assert "fx" in domains
    reached = {
        (path.name, module)
        for path in (APP / "answers").glob("*.py")
        for module in _imported(path)
        if module.split(".")[:2] in (["app", d] for d in domains)
    }
    assert not reached


def _route(router: APIRouter) -> APIRoute:
    [route] = router.routes
    assert isinstance(route, APIRoute)
    return route


def test_fx_supplies_its_key_part() -> None:
    router = APIRouter(route_class=CachedRead)

    @router.get("/in-usd")
    async def in_usd(fx: FxDep) -> None:
        pass

    assert keys.parts_of(_route(router).dependant) == (get_fx,)


class Mood:
    """A key part of a test's own: what the answers of `/mood` hang on."""

    def __init__(self) -> None:
        self.state = "calm"
        self.unsettled = 0

    def current(self) -> Hashable:
        return self.state


def get_mood(request: Request) -> Mood:
    mood: Mood = request.state.mood
    return mood


class _FixedVersion(DataVersions):
    """The data version, never moving (no database)."""

    def __init__(self) -> None:
        super().__init__("postgresql://unused")

    async def _read(self) -> int:
        return 1


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys, "_REGISTERED", list(keys._REGISTERED))
    keys.register(get_mood, get_mood)


@pytest.fixture
async def moods(registered: None) -> AsyncIterator[tuple[httpx.AsyncClient, Mood, list[str]]]:
    """A client of an app with one cached route that hangs on a `Mood`, the mood, and
    what the route computed (each state, each time)."""
    mood, computed = Mood(), []
    router = APIRouter(route_class=CachedRead)

    @router.get("/mood")
    async def read_mood(m: Annotated[Mood, Depends(get_mood)]) -> dict[str, str]:
        computed.append(m.state)
        if m.state == "torn":
            m.unsettled += 1  # handed out something it did not hold
        return {"mood": m.state}

    app = FastAPI()
    app.include_router(router)
    answers = Answers(store=AnswerStore(1 << 20), versions=_FixedVersion(), private=False)

    async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
        scope["state"] = {"answers": answers, "mood": mood}
        await app(scope, receive, send)

    transport = httpx.ASGITransport(app=with_state)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client, mood, computed
    await answers.versions.close()


async def test_a_registered_part_is_in_the_key(
    moods: tuple[httpx.AsyncClient, Mood, list[str]],
) -> None:
    client, mood, computed = moods
    for state in ("calm", "calm", "glad", "glad", "calm"):
        mood.state = state
        response = await client.get("/mood")
        assert response.json() == {"mood": state}
    assert computed == ["calm", "glad"]  # each state once; the rest answered as kept


async def test_an_answer_computed_while_its_part_moved_is_not_kept(
    moods: tuple[httpx.AsyncClient, Mood, list[str]],
) -> None:
    client, mood, computed = moods
    mood.state = "torn"
    for _ in range(2):
        assert (await client.get("/mood")).json() == {"mood": "torn"}
    assert computed == ["torn", "torn"]


def test_a_route_that_does_not_depend_on_a_part_does_not_hang_on_it(registered: None) -> None:
    router = APIRouter(route_class=CachedRead)

    @router.get("/plain")
    async def plain() -> None:
        pass

    assert keys.parts_of(_route(router).dependant) == ()
