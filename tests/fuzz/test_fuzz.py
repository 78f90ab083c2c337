"""Issue 25: structure-aware fuzzing of every way a file reaches the service.

Each generator (tests/fuzz/generators.py) draws a hostile workbook, Parquet file, CSV or
multipart request; each is posted to the real app on the real database, and must be
answered without a 5xx, with the error shape when refused, loading nothing when refused
and exactly what its report says when read, and leaving no reading process behind. A
reader that dies (a native crash) is a contained 4xx, counted apart.

The budget is FUZZ_EXAMPLES inputs per generator (25 in `make test`, so CI stays within
its time). Inputs are derandomized there, so a CI run is repeatable; FUZZ_SEED=n draws
other ones (a campaign: `FUZZ_EXAMPLES=2000 FUZZ_SEED=1 pytest tests/fuzz`). FUZZ_REPORT
names a file that gets one JSON line per generator: inputs tried and answers by status
and code. Every input that ever failed is kept as a named regression test in
`test_regressions.py`.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import API_KEY, LOADED_TABLES, PRODUCTS, Db, table_counts
from tests.fuzz.generators import (
    RawRequest,
    Upload,
    csv_files,
    multipart_requests,
    parquet_files,
    workbooks,
)
from tests.helpers import reading_processes, upload

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
SEED = os.environ.get("FUZZ_SEED")
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=SEED is None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
DATA_TABLES = ", ".join(("uploads", *LOADED_TABLES))

Tally = collections.Counter[str]


@pytest.fixture(scope="module")
def tallies() -> Iterator[dict[str, Tally]]:
    """Answers by generator, written to FUZZ_REPORT at the end of the module."""
    found: dict[str, Tally] = collections.defaultdict(collections.Counter)
    yield found
    report = os.environ.get("FUZZ_REPORT")
    if report:
        with open(report, "a") as out:
            for name, tally in sorted(found.items()):
                line = {"generator": name, "seed": SEED, "inputs": tally.total(), **tally}
                out.write(json.dumps(line) + "\n")


async def _fresh(engine: AsyncEngine, client: httpx.AsyncClient) -> Db:
    """Every input starts from the three products of the upload tests, nothing else."""
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {DATA_TABLES} RESTART IDENTITY CASCADE"))
    response = await upload(client, "products", PRODUCTS)
    assert response.status_code == 201, response.text
    return Db(engine)


async def _judge(db: Db, before: dict[str, int], response: httpx.Response, tally: Tally) -> None:
    """The oracle every input meets."""
    body = response.json()
    if response.status_code >= 400:
        tally[f"{response.status_code} {body['error']['code']}"] += 1
    else:
        tally[str(response.status_code)] += 1
    assert response.status_code < 500, response.text
    after = await table_counts(db)
    if response.status_code == 201:
        parts = ("rows_inserted", "rows_updated", "rows_unchanged", "rows_rejected")
        assert sum(body[p] for p in parts) == body["rows_total"], body
        table = "products" if body["kind"] == "products" else "orders"
        assert after[table] - before[table] == body["rows_inserted"], body
        assert after["rejects"] - before["rejects"] == body["rows_rejected"], body
    else:
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
        assert after == before, body
    assert reading_processes() == []


async def _post(client: httpx.AsyncClient, engine: AsyncEngine, up: Upload, tally: Tally) -> None:
    db = await _fresh(engine, client)
    before = await table_counts(db)
    response = await upload(client, up.kind, up.content, filename=up.filename, params=up.params)
    if response.status_code >= 500:
        _keep_failure(up)
    await _judge(db, before, response, tally)


def _keep_failure(up: Upload) -> None:
    """Write an input that failed to FUZZ_FAILURES (a folder), to become a regression."""
    folder = os.environ.get("FUZZ_FAILURES")
    if not folder:
        return
    name = hashlib.sha256(up.content).hexdigest()[:16]
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"{name}.bin"), "wb") as out:
        out.write(up.content)
    meta = {"kind": up.kind, "filename": up.filename, "params": up.params}
    with open(os.path.join(folder, f"{name}.json"), "w") as out:
        json.dump(meta, out)


@pytest.mark.one_server
@FUZZ
@given(up=workbooks())
async def test_workbooks(
    client: httpx.AsyncClient, engine: AsyncEngine, tallies: dict[str, Tally], up: Upload
) -> None:
    await _post(client, engine, up, tallies["xlsx"])


@pytest.mark.one_server
@FUZZ
@given(up=parquet_files())
async def test_parquet(
    client: httpx.AsyncClient, engine: AsyncEngine, tallies: dict[str, Tally], up: Upload
) -> None:
    await _post(client, engine, up, tallies["parquet"])


@FUZZ
@given(up=csv_files())
async def test_csv(
    client: httpx.AsyncClient, engine: AsyncEngine, tallies: dict[str, Tally], up: Upload
) -> None:
    await _post(client, engine, up, tallies["csv"])


@FUZZ
@given(request=multipart_requests())
async def test_multipart(
    client: httpx.AsyncClient, engine: AsyncEngine, tallies: dict[str, Tally], request: RawRequest
) -> None:
    db = await _fresh(engine, client)
    before = await table_counts(db)
    headers: dict[str, Any] = {"X-API-Key": API_KEY}
    if request.content_type is not None:
        headers["Content-Type"] = request.content_type
    try:
        response = await client.post(
            f"/uploads/{request.kind}", content=request.body, headers=headers
        )
    except (httpx.LocalProtocolError, UnicodeEncodeError):
        assume(False)  # not a request a client can send
    await _judge(db, before, response, tallies["multipart"])
