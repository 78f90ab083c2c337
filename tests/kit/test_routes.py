"""`kit.routes.read`: a GET declared by path, model and errors, its docstring the summary;
and the USD reads' one dependency, which must keep their parameters' documented order."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel

from app.kit.openapi import READ_ERRORS, USD_ERRORS
from app.kit.routes import read


class Answer(BaseModel):
    value: int


def documented(errors: dict[int | str, dict[str, Any]] = READ_ERRORS) -> dict[str, Any]:
    router = APIRouter()

    @read(router, "/answer", Answer, errors)
    async def answer() -> Answer:
        """The answer, on one line in the document
        however the docstring wraps it"""
        return Answer(value=42)

    app = FastAPI()
    # Included, as every router of the service is: FastAPI builds the route again then.
    app.include_router(router)
    operation: dict[str, Any] = app.openapi()["paths"]["/answer"]["get"]
    return operation


def test_the_docstring_is_the_summary_and_not_repeated_as_the_description() -> None:
    operation = documented()
    assert operation["summary"] == (
        "The answer, on one line in the document however the docstring wraps it"
    )
    assert "description" not in operation


def test_the_model_and_the_errors_are_declared() -> None:
    operation = documented(USD_ERRORS)
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Answer"
    }
    assert "text/csv" in operation["responses"]["200"]["content"]
    assert {"404", "406", "422", "503"} <= set(operation["responses"])


def test_usd_reads_list_their_parameters_in_one_order() -> None:
    from app.main import create_app

    paths = create_app().openapi()["paths"]

    def names(path: str) -> list[str]:
        return [p["name"] for p in paths[path]["get"]["parameters"]]

    usd = ["format", "start", "end", "fx_mode"]
    assert names("/kpis") == usd
    assert names("/insights/average-ticket") == usd
    assert names("/insights/daily-revenue") == [*usd, "limit", "cursor"]
    assert names("/orders") == [*usd, "limit", "cursor", "product_id", "category"]
