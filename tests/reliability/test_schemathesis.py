"""Schemathesis against /openapi.json: generated requests to every operation, over ASGI,
on the real PostgreSQL of the test run, with the API key for uploads.

Phases (CONFIG): the schema's examples; coverage, which derives cases from the schema
itself: boundaries, each parameter missing, of the wrong type, out of range or repeated,
every undeclared HTTP method, and on operations with a body `multipart/form-data`
without a boundary and a Content-Type they do not take; fuzzing, MAX_EXAMPLES positive
and negative cases per operation, derandomized so that a run is repeatable (a failure
prints the case to replay). About 1,750 requests.

Checks: no 5xx (`not_a_server_error`), every status code declared
(`status_code_conformance`), every content type declared (`content_type_conformance`),
every body valid against its declared schema (`response_schema_conformance`), data that
breaks the schema refused with a 4xx (`negative_data_rejection`), an undeclared method
answered 405 with `Allow` (`unsupported_method`, but on PATHS_OVERLAP), and a write
without its key refused (`ignored_auth`). Bodies broken below what a schema describes
(cut short, bad boundaries, lengths that lie) are tests/reliability/test_malformed_requests.py's.

The schema is loaded when the module is (`schemathesis.pytest.from_fixture` does not work
with pytest 9.2: it sets `node._nodeid`), from the app's own document; requests go to
`LateApp`, which forwards them to an app built for each test on the run's database.
Schemathesis runs that app's lifespan on its own event loop and ends it with the test.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)
from sqlalchemy import URL

from app.main import app as documented_app
from app.main import create_app
from tests.conftest import API_KEY, PRODUCTS, make_settings
from tests.helpers import upload
from tests.reliability.test_hostile_params import SAMPLE_ORDERS

MAX_EXAMPLES = 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    unsupported_method,
    ignored_auth,
]
# Their paths are also another route's template, so an undeclared method is routed there
# and refused by its validation (422) rather than by the router (405): GET
# /uploads/products is GET /uploads/{upload_id} with a non-integer id, POST /uploads/1 the
# catch-all POST /uploads/{kind} with an unknown kind.
PATHS_OVERLAP = {"POST /uploads/products", "POST /uploads/orders", "GET /uploads/{upload_id}"}
# Stated, not discovered (a schemathesis.toml above the checkout would count otherwise).
CONFIG = SchemathesisConfig.from_dict(
    {
        "generation": {"mode": "all"},  # positive and negative
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True, "generate-duplicate-query-parameters": True},
            "fuzzing": {"enabled": True},
        },
    }
)


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


class LateApp:
    """An ASGI app that forwards to the one a fixture gives it."""

    target: Any = None

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        assert self.target is not None, "the `live_app` fixture did not run"
        await self.target(scope, receive, send)


LATE_APP = LateApp()
schema = schemathesis.openapi.from_dict(documented_app.openapi(), config=CONFIG)
schema.app = LATE_APP
schema.location = "/openapi.json"


@pytest.fixture
async def seeded(client: httpx.AsyncClient) -> None:
    """Products, orders and an upload with rejects, so that answers have rows."""
    await upload(client, "products", PRODUCTS)
    await upload(client, "orders", SAMPLE_ORDERS + "5,99,1,2024-12-05\n")


@pytest.fixture(autouse=True)
def live_app(seeded: None, database_url: URL, tmp_path: Path) -> None:
    LATE_APP.target = create_app(make_settings(database_url, tmp_path))


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_openapi_conformance(case: schemathesis.Case[Any]) -> None:
    excluded = [unsupported_method] if case.operation.label in PATHS_OVERLAP else []
    case.call_and_validate(headers={"X-API-Key": API_KEY}, checks=CHECKS, excluded_checks=excluded)
