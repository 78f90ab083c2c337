"""`read()`: a read endpoint declared by its path, the model of its JSON answer (CSV is
negotiated beside it) and the errors it may answer; its summary is the handler's
docstring, so that the code says what the endpoint does where it does it."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.types import DecoratedCallable

from app.kit.openapi import READ_ERRORS

Responses = dict[int | str, dict[str, Any]]


def read(
    router: APIRouter, path: str, model: Any, errors: Responses = READ_ERRORS
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """`router.get(path, …)` with the handler's docstring, folded onto one line, as its
    summary; `model` None for an answer that is a file (CSV, Parquet)."""

    def declare(endpoint: DecoratedCallable) -> DecoratedCallable:
        summary = " ".join(inspect.cleandoc(endpoint.__doc__ or "").split())
        # Else FastAPI repeats the docstring as the description (each time the router is
        # included): it is the summary.
        endpoint.__doc__ = None
        return router.get(path, summary=summary, response_model=model, responses=errors)(endpoint)

    return declare
