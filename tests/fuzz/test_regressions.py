"""Every input the fuzzers found failing, kept: the corpus in `tests/fuzz/corpus/` (a file
and its request as JSON, named for what it broke) is replayed through the same oracle
as the generators' inputs, and each finding has a test of its own that says what held.

A campaign's failures land in FUZZ_FAILURES (tests/fuzz/test_fuzz.py); copy each into
the corpus under a name that says what it broke, then fix it.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.kit.csv import csv_lines
from tests.conftest import table_counts
from tests.fuzz.generators import Upload
from tests.fuzz.test_fuzz import Tally, _fresh, _judge
from tests.helpers import reading_processes, upload
from tests.uploads.files import xlsx

CORPUS = Path(__file__).parent / "corpus"


def _corpus() -> list[Upload]:
    found = []
    for meta_file in sorted(CORPUS.glob("*.json")):
        meta = json.loads(meta_file.read_text())
        content = meta_file.with_suffix(".bin").read_bytes()
        found.append(Upload(meta["kind"], content, meta["filename"], meta["params"]))
    return found


CASES = _corpus()


@pytest.mark.parametrize("up", CASES, ids=[p.stem for p in sorted(CORPUS.glob("*.json"))])
async def test_the_corpus_holds(client: httpx.AsyncClient, engine: AsyncEngine, up: Upload) -> None:
    db = await _fresh(engine, client)
    before = await table_counts(db)
    response = await upload(client, up.kind, up.content, filename=up.filename, params=up.params)
    await _judge(db, before, response, Tally())


def test_the_corpus_is_not_empty() -> None:
    assert len(CASES) >= 3


class TestLoneCarriageReturn:
    """A field holding a lone CR (found by the CSV fuzzer, seed 2): Python's csv module
    quotes a field only for its terminator's characters, so the careful path wrote the
    CR bare into its COPY, which PostgreSQL took for a record's end: a 500."""

    async def test_a_careful_upload_with_one_is_read(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        await _fresh(engine, client)
        content = b'id,name,category,price,note\n9,"a\rb",Hats,1.00,x\n10,Cap,Hats,2.00,y\n'
        response = await upload(client, "products", content)
        assert response.status_code == 201, response.text
        report = response.json()
        assert report["rows_total"] == 2
        assert report["rows_inserted"] + report["rows_rejected"] == 2

    async def test_a_workbook_cell_with_one_stays_one_row(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        await _fresh(engine, client)
        content = xlsx([["id", "name", "category", "price"], [9, "a\rb", "Hats", 1.5]])
        response = await upload(client, "products", content, filename="cr.xlsx")
        assert response.status_code == 201, response.text
        assert response.json()["rows_total"] == 1

    def test_csv_answers_quote_it(self) -> None:
        text = csv_lines([["a\rb", 1], ["plain", 2]]).decode()
        assert text == '"a\rb",1\nplain,2\n'
        assert list(csv.reader(io.StringIO(text, newline=""))) == [["a\rb", "1"], ["plain", "2"]]


async def test_a_reading_process_stops_when_its_upload_fails_first(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """Found by the fuzzers' oracle: a workbook refused at its header (before its rows
    were asked for) left its reading process alive until the collector found the rows'
    generator, and one never started is never finalized."""
    await _fresh(engine, client)
    content = xlsx([["id", "name"], [1, "x"]])  # missing columns
    response = await upload(client, "products", content, filename="short.xlsx")
    assert response.json()["error"]["code"] == "missing_columns"
    assert reading_processes() == []
