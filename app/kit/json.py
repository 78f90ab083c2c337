"""JSON answers rendered by orjson, for the large ones."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response


def json_answer(content: dict[str, Any]) -> Response:
    """A JSON answer rendered by orjson from plain values (dates, ints, strings: money is
    already text), skipping FastAPI's second validation of the response model: for large
    answers, where that costs a Python object per cell. The bytes are the ones pydantic
    writes for the same values (compact, UTF-8, ISO dates)."""
    return Response(orjson.dumps(content), media_type="application/json")
