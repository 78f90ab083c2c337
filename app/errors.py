"""AppError and the one handler that renders every error as
`{"error": {"code", "message", "details"}}` (SPEC section 3)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from http import HTTPStatus
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class AppError(Exception):
    """A domain error that knows its stable code and HTTP status."""

    status_code: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        details: Any = None,
        code: str | None = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class NotAcceptable(AppError):
    status_code = 406
    code = "not_acceptable"


class ServiceUnavailable(AppError):
    status_code = 503
    code = "unavailable"


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorResponse(BaseModel):
    """The shape of every error answer."""

    error: ErrorBody


DATABASE_DOWN = (
    "`database_unavailable`: the database went away under the request, or `busy`: every"
    " connection is in use (the pool's or the server's); both with Retry-After"
)
# For the routers of every route that reads or writes the database (OpenAPI).
DATABASE_ERRORS: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorResponse, "description": DATABASE_DOWN}
}


def error_response(
    status_code: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": jsonable_encoder(details)}}
    return JSONResponse(body, status_code=status_code, headers=headers)


# Codes for the plain HTTP errors that Starlette raises itself (routing, methods).
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    503: "unavailable",
}


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = _HTTP_CODES.get(status, "error" if status < 500 else "internal_error")
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase
    return error_response(status, code, message, headers=exc.headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Keep where and why; drop the echoed input, which may be large or sensitive.
    # pydantic begins the message of a validator's ValueError with "Value error, ": ours are
    # written to be read as they are.
    details = [
        {
            "loc": list(err.get("loc", ())),
            "msg": str(err.get("msg", "")).removeprefix("Value error, "),
            "type": err.get("type", ""),
        }
        for err in exc.errors()
    ]
    return error_response(422, "validation_error", "The request is not valid.", details)


def _busy() -> JSONResponse:
    return error_response(
        503, "busy", "The service is busy; try again shortly.", headers={"Retry-After": "1"}
    )


async def _pool_exhausted(_: Request, exc: Exception) -> JSONResponse:
    # Every database connection is busy: a moment of overload, not a fault of the request.
    log.warning("database pool exhausted: %s", type(exc).__name__)
    return _busy()


# The database went away under a request: its connection was killed, the server stopped,
# crashed or is starting up. Not the request's fault, and worth a retry once it is back
# (/readyz). SQLSTATE class 08 is "connection exception"; 57P01-57P03 are the admin
# shutdown, the crash of another backend and "cannot connect now" (starting up, shutting
# down, in recovery).
GONE_STATES = ("08", "57P01", "57P02", "57P03")
# asyncpg's words for a connection whose protocol is stuck in its error-consuming state.
STUCK_PROTOCOL = "another operation (2) is in progress"
# The server has no connection to spare (53300): a moment of overload, as an exhausted pool.
TOO_MANY_CONNECTIONS = "53300"


def _wrapped(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and every exception it carries: causes, contexts, the driver's error under
    SQLAlchemy's, the members of exception groups (a task group's); each once."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        if isinstance(orig := getattr(current, "orig", None), BaseException):
            pending.append(orig)  # the driver's error under SQLAlchemy's (DBAPIError, adapted)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def _sqlstate(exc: BaseException) -> str:
    # asyncpg's errors carry it, and so does SQLAlchemy's adapted error around them.
    state = getattr(exc, "sqlstate", None)
    return state if isinstance(state, str) else ""


def _gone(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, asyncpg.InternalClientError):
        # The server's last words (a FATAL error) arrived between two statements, which
        # asyncpg cannot take: its protocol is left consuming an error that no
        # ReadyForQuery will end, and the next statement is refused (MagicStack/asyncpg#784).
        return STUCK_PROTOCOL in str(exc)
    if isinstance(exc, asyncpg.InterfaceError):
        # A closed connection, in asyncpg's words (SQLAlchemy's is_disconnect reads the
        # same); its other interface errors are bugs (an argument of the wrong type…).
        return "connection is closed" in str(exc)
    # Refused, reset, no socket file, a connect timeout: asyncpg lets these out as they are.
    return isinstance(exc, OSError) or _sqlstate(exc).startswith(GONE_STATES)


def database_gone(exc: BaseException) -> bool:
    """True when the database went away under `exc`, whichever layer wraps it: asyncpg,
    SQLAlchemy's adapter and DBAPIError, a cause or context chain, an exception group.
    A real SQL error (a syntax error, a constraint…) is not: that stays a 500."""
    return any(_gone(e) for e in _wrapped(exc))


def database_busy(exc: BaseException) -> bool:
    """True when the server refused a connection for having too many."""
    return any(_sqlstate(e) == TOO_MANY_CONNECTIONS for e in _wrapped(exc))


def _database_down(request: Request, exc: BaseException) -> JSONResponse | None:
    """The 503 for a database that went away or has no connection to spare; None when
    `exc` is neither."""
    if database_gone(exc):
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path,
                    type(exc).__name__)  # fmt: skip
        return error_response(
            503,
            "database_unavailable",
            "The database is unavailable; nothing was changed. Try again shortly.",
            headers={"Retry-After": "2"},
        )
    if database_busy(exc):
        log.warning("database refused a connection: too many (%s)", type(exc).__name__)
        return _busy()
    return None


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """A database-shaped error: 503 when the database is away; otherwise a bug, raised on
    to the catch-all (500, and the server logs it)."""
    if (response := _database_down(request, exc)) is None:
        raise exc
    return response


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    if (response := _database_down(request, exc)) is not None:
        return response
    # Logged with its traceback for operators; the client gets no stack trace or SQL.
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "An unexpected error occurred.")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(PoolTimeout, _pool_exhausted)
    # A database that went away is answered where the routes' errors are, not by the
    # catch-all: Starlette re-raises what its `Exception` handler answered, and uvicorn
    # then closes the connection, so a client's next request on it failed (a kept-alive
    # connection after a 503 `database_unavailable`). These are the classes its errors
    # arrive as, or wrapped in; anything else of them goes on to the catch-all.
    for kind in (OSError, asyncpg.PostgresError, asyncpg.InterfaceError,
                 asyncpg.InternalClientError, SQLAlchemyError, ExceptionGroup):  # fmt: skip
        app.add_exception_handler(kind, _database_error)
    app.add_exception_handler(Exception, _unexpected)
