"""Issue 14: the reference files, converted here into other delimiters, encodings and
formats, give the same figures as the files as they are."""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import REFERENCE, empty_data_tables, require_reference
from tests.helpers import upload
from tests.uploads.files import csv_text, parquet, xlsx

READS = ("/kpis", "/insights/average-ticket", "/insights/daily-revenue", "/insights/top-growth")


def _reference(kind: str) -> str:
    require_reference()
    return (REFERENCE / "data" / f"{kind}.csv").read_text()


def _rows(kind: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(_reference(kind), newline="")))


def _typed(kind: str) -> tuple[list[str], list[list[Any]]]:
    """The file's header and its rows as values: integers, decimals, dates."""
    header, *rows = _rows(kind)
    typed: list[list[Any]] = []
    for row in rows:
        values: list[Any] = []
        for name, value in zip(header, row, strict=True):
            if name in ("id", "product_id", "quantity"):
                values.append(int(value))
            elif name == "price":
                values.append(Decimal(value))
            elif name == "created_date":
                values.append(datetime.date.fromisoformat(value.strip("'")))
            else:
                values.append(value)
        typed.append(values)
    return header, typed


def _as_xlsx(kind: str) -> bytes:
    header, rows = _typed(kind)
    return xlsx([header, *([float(v) if isinstance(v, Decimal) else v for v in r] for r in rows)])


def _as_parquet(kind: str) -> bytes:
    import pyarrow as pa

    header, rows = _typed(kind)
    columns: dict[str, Any] = {}
    for i, name in enumerate(header):
        values = [r[i] for r in rows]
        if name == "price":
            columns[name] = pa.array(values, pa.decimal128(12, 2))
        elif name == "created_date":
            columns[name] = pa.array(values, pa.date32())
        else:
            columns[name] = values
    return parquet(columns, row_group_size=7)  # several row groups


def _as_csv(delimiter: str, encoding: str, decimal_comma: bool = False) -> Callable[[str], bytes]:
    def build(kind: str) -> bytes:
        return csv_text(
            _reference(kind), delimiter=delimiter, encoding=encoding, decimal_comma=decimal_comma
        )

    return build


VARIANTS: dict[str, Callable[[str], bytes]] = {
    "semicolon-cp1252-decimal-comma": _as_csv(";", "cp1252", decimal_comma=True),
    "tab-utf16": _as_csv("\t", "utf-16"),
    "pipe-latin1": _as_csv("|", "latin-1"),
    "xlsx": _as_xlsx,
    "parquet": _as_parquet,
}


async def _figures(client: httpx.AsyncClient) -> list[Any]:
    return [(await client.get(path)).json() for path in READS]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
async def test_same_figures_in_every_dialect_and_format(
    api: httpx.AsyncClient, engine: AsyncEngine, variant: str
) -> None:
    for kind in ("products", "orders"):
        assert (await upload(api, kind, _reference(kind))).status_code == 201
    plain = await _figures(api)
    await empty_data_tables(engine)
    build = VARIANTS[variant]
    for kind in ("products", "orders"):
        response = await upload(api, kind, build(kind))
        assert response.status_code == 201, response.text
        report = response.json()
        assert report["rows_rejected"] == 0, report
        assert report["dialect"]["format"] == variant if variant in ("xlsx", "parquet") else True
    assert await _figures(api) == plain
    assert plain[0]["most_demanded_product"]["sales_brl"] == "891.80"  # the reference's own
