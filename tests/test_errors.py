"""Every error, whatever raised it, answers `{"error": {"code", "message", "details"}}`."""

import re
from collections.abc import AsyncIterator, Callable

import asyncpg
import httpx
import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi as Adapted
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import SessionDep
from app.errors import AppError, database_busy, database_gone
from app.security import ApiKeyDep
from tests.conftest import API_KEY, open_client
from tests.helpers import assert_error

probe = APIRouter(prefix="/_probe")


@probe.get("/items/{item_id}")
async def item(item_id: int, limit: int = 10) -> dict[str, int]:
    return {"item_id": item_id, "limit": limit}


@probe.get("/domain")
async def domain() -> None:
    raise AppError("Nope.", code="teapot", status_code=418, details={"why": "test"})


@probe.get("/boom")
async def boom() -> None:
    raise RuntimeError("secret internals: SELECT * FROM orders")


def through_sqlalchemy(error: Exception) -> DBAPIError:
    """`error` as SQLAlchemy's asyncpg dialect raises it: adapted (its SQLSTATE copied),
    then wrapped in a DBAPIError, each raised from the one before."""
    adapted = Adapted.Error(str(error), error)  # type: ignore[no-untyped-call]
    adapted.__cause__ = error
    wrapped = DBAPIError.instance(None, None, adapted, Adapted.Error)
    assert isinstance(wrapped, DBAPIError)
    wrapped.__cause__ = adapted
    return wrapped


def raised_from(error: BaseException, cause: BaseException) -> BaseException:
    error.__cause__ = cause
    return error


SHUTTING_DOWN = asyncpg.CannotConnectNowError("the database system is shutting down")
# How the database's going away reached the app (seen in tests/reliability), and errors
# that are bugs, whatever wraps them.
GONE: dict[str, Callable[[], BaseException]] = {
    "shutting down, through SQLAlchemy": lambda: through_sqlalchemy(SHUTTING_DOWN),
    "starting up": lambda: asyncpg.CannotConnectNowError("the database system is starting up"),
    "admin shutdown": lambda: asyncpg.AdminShutdownError(
        "terminating connection due to administrator command"
    ),
    "another backend crashed": lambda: through_sqlalchemy(
        asyncpg.CrashShutdownError(
            "terminating connection because of crash of another server process"
        )
    ),
    "closed mid-statement": lambda: asyncpg.ConnectionDoesNotExistError(
        "connection was closed in the middle of operation"
    ),
    "closed, in asyncpg's words": lambda: through_sqlalchemy(
        asyncpg.InterfaceError(
            "cannot call Transaction.commit(): the underlying connection is closed"
        )
    ),
    "protocol stuck after a FATAL between statements": lambda: through_sqlalchemy(
        asyncpg.InternalClientError(
            "cannot switch to state 15; another operation (2) is in progress"
        )
    ),
    "protocol stuck, asyncpg's own (a COPY of the Parquet feed)": lambda: (
        asyncpg.InternalClientError(
            "cannot switch to state 15; another operation (2) is in progress"
        )
    ),
    "refused": lambda: ConnectionRefusedError(111, "Connection refused"),
    "no socket file": lambda: FileNotFoundError(2, "No such file or directory"),
    "invalidated by SQLAlchemy": lambda: DBAPIError(
        "SELECT 1", None, Exception("gone"), connection_invalidated=True
    ),
    "an OperationalError around 57P03": lambda: OperationalError("SELECT 1", None, SHUTTING_DOWN),
    "in a task group": lambda: ExceptionGroup(
        "unhandled errors in a TaskGroup", [ValueError("other"), through_sqlalchemy(SHUTTING_DOWN)]
    ),
    "the cause of a RuntimeError": lambda: raised_from(
        RuntimeError("Caught handled exception, but response already started."),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    ),
}
NOT_GONE: dict[str, Callable[[], BaseException]] = {
    "division by zero": lambda: through_sqlalchemy(asyncpg.DivisionByZeroError("division by zero")),
    "syntax error": lambda: asyncpg.PostgresSyntaxError('syntax error at or near "SELEC"'),
    "unique violation": lambda: through_sqlalchemy(asyncpg.UniqueViolationError("duplicate key")),
    "lock timeout": lambda: OperationalError(
        "SELECT 1", None, asyncpg.LockNotAvailableError("canceling statement due to lock timeout")
    ),
    "statement timeout": lambda: asyncpg.QueryCanceledError(
        "canceling statement due to statement timeout"
    ),
    "an argument of the wrong type": lambda: asyncpg.DataError(
        "invalid input for query argument $1"
    ),
    "a connection used twice at once": lambda: asyncpg.InterfaceError(
        "cannot perform operation: another operation is in progress"
    ),
    "pool exhausted": lambda: PoolTimeout("QueuePool limit of size 10 overflow 10 reached"),
    "a bug": lambda: RuntimeError("secret internals"),
    "a bug in a group": lambda: ExceptionGroup("errors", [KeyError("x"), TypeError("y")]),
}


@probe.get("/fail/{name}")
async def fail(name: str) -> None:
    raise {**GONE, **NOT_GONE}[name]()


@probe.get("/too-many-connections")
async def too_many_connections() -> None:
    raise through_sqlalchemy(asyncpg.TooManyConnectionsError("sorry, too many clients already"))


@probe.get("/session")
async def with_session(session: SessionDep) -> dict[str, int]:
    return {"one": int(await session.scalar(text("SELECT 1")))}


@probe.post("/write", dependencies=[ApiKeyDep])
async def write() -> dict[str, bool]:
    return {"ok": True}


@pytest.fixture
async def probed(app: FastAPI, clean_db: None) -> AsyncIterator[httpx.AsyncClient]:
    app.include_router(probe)
    async for c in open_client(app):
        yield c


class TestErrorShape:
    async def test_unknown_route_is_404(self, probed: httpx.AsyncClient) -> None:
        assert_error(await probed.get("/no/such/thing"), 404, "not_found")

    async def test_wrong_method_is_405(self, probed: httpx.AsyncClient) -> None:
        assert_error(await probed.delete("/healthz"), 405, "method_not_allowed")
        # A path that is an upload's for POST: not read as an upload id (it was a 422,
        # "unable to parse string as an integer").
        for path in ("/uploads/orders", "/uploads/products"):
            response = await probed.get(path)
            assert_error(response, 405, "method_not_allowed")
            assert response.headers["allow"] == "POST"

    async def test_messages_are_ours_as_written(self, probed: httpx.AsyncClient) -> None:
        """A validator's own message, without pydantic's "Value error, " before it."""
        response = await probed.post(
            "/uploads/orders",
            params={"columns": "id"},
            files={"file": ("o.csv", b"id\n", "text/csv")},
            headers={"X-API-Key": API_KEY},
        )
        error = assert_error(response, 422, "validation_error")
        assert [d["msg"] for d in error["details"]] == ["columns: 'id' is not column=Name"]

    async def test_request_validation_is_422(self, probed: httpx.AsyncClient) -> None:
        error = assert_error(
            await probed.get("/_probe/items/abc", params={"limit": "x"}), 422, "validation_error"
        )
        locations = {tuple(d["loc"]) for d in error["details"]}
        assert locations == {("path", "item_id"), ("query", "limit")}
        assert all("input" not in d for d in error["details"])

    async def test_domain_error_keeps_its_code_and_status(self, probed: httpx.AsyncClient) -> None:
        error = assert_error(await probed.get("/_probe/domain"), 418, "teapot")
        assert error == {"code": "teapot", "message": "Nope.", "details": {"why": "test"}}

    async def test_unexpected_error_is_500_without_internals(
        self, probed: httpx.AsyncClient
    ) -> None:
        response = await probed.get("/_probe/boom")
        assert_error(response, 500, "internal_error")
        assert "SELECT" not in response.text
        assert "Traceback" not in response.text


class TestApiKey:
    async def test_missing_key_is_401(self, probed: httpx.AsyncClient) -> None:
        response = await probed.post("/_probe/write")
        error = assert_error(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "X-API-Key"
        # Where the key is, and nothing of it.
        assert "printed by `orderlens serve`" in error["message"]
        assert ".orderlens/api-key" in error["message"] and API_KEY not in response.text

    async def test_wrong_key_is_401(self, probed: httpx.AsyncClient) -> None:
        response = await probed.post("/_probe/write", headers={"X-API-Key": API_KEY + "x"})
        assert_error(response, 401, "unauthorized")

    async def test_right_key_passes(self, probed: httpx.AsyncClient) -> None:
        response = await probed.post("/_probe/write", headers={"X-API-Key": API_KEY})
        assert response.status_code == 200
        assert response.json() == {"ok": True}


class TestDatabaseErrors:
    @pytest.mark.parametrize("name", sorted(GONE))
    def test_the_database_gone_is_recognised_whatever_wraps_it(self, name: str) -> None:
        assert database_gone(GONE[name]())

    @pytest.mark.parametrize("name", sorted(NOT_GONE))
    def test_other_errors_are_not_the_database_gone(self, name: str) -> None:
        assert not database_gone(NOT_GONE[name]())
        assert not database_busy(NOT_GONE[name]())

    def test_a_cycle_of_contexts_ends(self) -> None:
        first, second = ValueError("a"), KeyError("b")
        first.__context__, second.__context__ = second, first
        assert not database_gone(first)

    @pytest.mark.parametrize("name", sorted(GONE))
    async def test_gone_is_503_and_the_connection_stays_open(
        self, app: FastAPI, clean_db: None, name: str
    ) -> None:
        """Answered where the routes' errors are, or by the catch-all for what wraps them
        in another class (a RuntimeError): a 503 either way."""
        app.include_router(probe)
        async for client in open_client(app):
            response = await client.get(f"/_probe/fail/{name}")
            assert_error(response, 503, "database_unavailable")
            assert response.headers["Retry-After"] == "2"

    @pytest.mark.parametrize("name", sorted(GONE))
    async def test_gone_is_not_let_out_to_the_server(
        self, app: FastAPI, clean_db: None, name: str
    ) -> None:
        """What the server sees raised it logs, and closes the client's connection: a
        kept-alive one that the client's next request was already on had no answer
        (seen in tests/reliability/test_database_faults.py, a raw InternalClientError
        from the Parquet feed)."""
        app.include_router(probe)
        async for client in open_client(app, raise_app_exceptions=True):
            assert_error(await client.get(f"/_probe/fail/{name}"), 503, "database_unavailable")

    @pytest.mark.parametrize("name", sorted(set(NOT_GONE) - {"pool exhausted"}))
    async def test_other_database_errors_stay_500(
        self, probed: httpx.AsyncClient, name: str
    ) -> None:
        response = await probed.get(f"/_probe/fail/{name}")
        assert_error(response, 500, "internal_error")
        assert "secret" not in response.text

    async def test_a_commit_that_fails_is_answered_not_cut(
        self, app: FastAPI, clean_db: None, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The session ends before the answer is sent: a commit that meets the database
        gone is a 503, not a 200 already sent that the server then cuts."""

        async def gone(_: AsyncSession) -> None:
            raise asyncpg.ConnectionDoesNotExistError(
                "connection was closed in the middle of operation"
            )

        app.include_router(probe)
        monkeypatch.setattr(AsyncSession, "commit", gone)
        async for client in open_client(app, raise_app_exceptions=True):
            assert_error(await client.get("/_probe/session"), 503, "database_unavailable")

    async def test_too_many_connections_is_busy(self, probed: httpx.AsyncClient) -> None:
        response = await probed.get("/_probe/too-many-connections")
        assert_error(response, 503, "busy")
        assert response.headers["Retry-After"] == "1"


class TestOpenApi:
    async def test_docs_and_schema_declare_the_api_key(self, client: httpx.AsyncClient) -> None:
        docs = await client.get("/docs")
        assert docs.status_code == 200
        assert "swagger-ui" in docs.text
        # Served by the app itself, so it works with no internet.
        assert "http" not in docs.text.replace("http-equiv", "")
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
            assert (await client.get(f"/static-offline-docs/{asset}")).status_code == 200
        schema = (await client.get("/openapi.json")).json()
        assert schema["components"]["securitySchemes"]["ApiKeyAuth"] == {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": schema["components"]["securitySchemes"]["ApiKeyAuth"]["description"],
        }
        assert "ErrorResponse" in schema["components"]["schemas"]

    async def test_redoc_loads_nothing_from_elsewhere(self, client: httpx.AsyncClient) -> None:
        page = await client.get("/redoc")
        assert page.status_code == 200
        assert "<redoc" in page.text
        assert "http" not in page.text.replace("http-equiv", "")
        srcs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert srcs and all(src.startswith("/") for src in srcs), srcs
        for src in srcs:
            assert (await client.get(src)).status_code == 200, src
        bundle = await client.get("/docs-static/redoc.standalone.js")
        assert bundle.headers["content-type"].startswith("text/javascript")
        assert b"cdn.redoc.ly" not in bundle.content
        assert len(bundle.content) > 500_000  # the whole of ReDoc, not a stub
