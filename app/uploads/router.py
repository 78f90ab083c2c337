"""POST /uploads/products and /uploads/orders (the history and rejects: history_router.py)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.types import DecoratedCallable
from pydantic import BaseModel, BeforeValidator, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.alerts import service as alerts
from app.alerts.deps import AlerterDep
from app.alerts.service import Alerter
from app.config import Settings
from app.db import SessionDep
from app.errors import DATABASE_ERRORS, AppError, ErrorResponse
from app.kit.deps import EngineDep, SettingsDep
from app.metrics import Metrics, MetricsDep
from app.security import ApiKeyDep
from app.uploads import repository, service
from app.uploads.dialect import UploadOptions, codec_name, parse_date_format
from app.uploads.models import OnConflict, UploadKind
from app.uploads.plan import UploadLimits
from app.uploads.rules import RULES
from app.uploads.schemas import UploadReport
from app.uploads.tabular import TabularLimits

router = APIRouter(prefix="/uploads", tags=["uploads"], responses=DATABASE_ERRORS)

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or wrong X-API-Key"},
    413: {
        "model": ErrorResponse,
        "description": "`too_large`: over MAX_UPLOAD_BYTES (or a workbook over"
        " XLSX_MAX_UNPACKED_BYTES or XLSX_MAX_CELLS, or a workbook or Parquet file whose"
        " reading needs more than a PARSER_MAX_* limit)",
    },
    422: {
        "model": ErrorResponse,
        "description": "A file-level problem: `empty_file`, `missing_columns`,"
        " `duplicate_columns`, `undecodable`, `unreadable_file` (the reader of a workbook"
        " or Parquet file crashed on it), `missing_file`, `header_too_long`;"
        " or invalid parameters. Nothing is loaded.",
    },
}


def renamed(value: str) -> tuple[tuple[str, str], ...]:
    """`column=Name,…` as (column, name) pairs; ValueError (a 422 of the query) when a
    pair has no `=`, an empty side, or a column or a name twice. Whether the columns are
    the kind's is the upload's to say (`missing_columns`)."""
    pairs: list[tuple[str, str]] = []
    for part in value.split(","):
        column, sep, name = part.partition("=")
        column, name = column.strip().casefold(), name.strip()
        if not sep or not column or not name:
            raise ValueError(f"columns: {part.strip()!r} is not column=Name")
        pairs.append((column, name))
    for side, label in ((0, "column"), (1, "name")):
        values = [pair[side].casefold() for pair in pairs]
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            raise ValueError(f"columns: the {label} {twice[0]!r} is given twice")
    return tuple(pairs)


# The CSV delimiters and decimal separators by name (as Swagger lists them); the
# characters themselves are taken too (`?delimiter=;`, `?decimal=,`).
DELIMITERS = {"comma": ",", "semicolon": ";", "tab": "\t", "pipe": "|"}
DECIMALS = {"point": ".", "comma": ","}


def _named(names: dict[str, str]) -> Any:
    """A validator that reads a choice's character as its name."""
    by_char = {char: name for name, char in names.items()}

    def name_of(value: object) -> object:
        return by_char.get(value, value) if isinstance(value, str) else value

    return BeforeValidator(name_of)


Delimiter = Annotated[Literal["comma", "semicolon", "tab", "pipe"], _named(DELIMITERS)]
Decimal = Annotated[Literal["point", "comma"], _named(DECIMALS)]


class UploadQuery(BaseModel):
    """The query parameters of an upload. The dialect ones fix what is otherwise detected
    (docs/UPLOADS.md, "File formats and dialects")."""

    on_conflict: OnConflict = Field(
        OnConflict.REJECT, description="What to do with stored ids that have other values"
    )
    delimiter: Delimiter | None = Field(
        None,
        description="The CSV delimiter, by name (or the character itself: `,` `;` `|`);"
        " default: the header's",
    )
    decimal: Decimal | None = Field(
        None,
        description="The prices' decimal separator, by name (or `.`, `,`); default: either"
        " when the delimiter is not a comma, `point` when it is",
    )
    encoding: str | None = Field(
        None,
        max_length=64,
        description="Any Python text codec (`cp1252`, `latin-1`, `utf-16-le`…); default:"
        " detected (UTF-8, UTF-16 with BOM, Windows-1252, Latin-1)",
    )
    date_format: str | None = Field(
        None,
        max_length=24,
        description="Dates in another order, e.g. `%d/%m/%Y` (%d %m %Y, one separator of"
        " `/ - . space`), optionally with a local time, `%m/%d/%Y %H:%M[:%S]`; default:"
        " ISO dates and date-times only, never guessed",
    )
    sheet: str | None = Field(
        None, max_length=31, description="The workbook's sheet by name; default: the first"
    )
    columns: str | None = Field(
        None,
        max_length=2000,
        description="The file's names for the columns, `column=Name` pairs separated by"
        " commas, e.g. `id=LineNo,product_id=Item,quantity=Qty,created_date=InvoiceDate`;"
        " names are matched as header names are (trimmed, any case); default: the"
        " columns' own names",
        examples=["created_date=InvoiceDate,quantity=Qty"],
    )
    effective_from: date | None = Field(
        None,
        description="Products only: the date (YYYY-MM-DD) the file's prices take effect"
        " from, for rows without an `effective_from` column of their own; default: the"
        " upload's date in BUSINESS_TIMEZONE. Orders are valued at the price in effect on"
        " their date; a product's first price holds for every earlier date too",
        examples=["2024-11-01"],
    )
    ids: Literal["integer", "text"] = Field(
        "integer",
        description="`text`: ids (a product's `id`, an order's `id` and `product_id`) may be"
        " text as well as integers (SKU codes, hex digests, UUIDs; at most 64 characters),"
        " kept as written; an orders file may then leave out `id` when it has `order_id`,"
        " each line keyed by the service. Default `integer`: ids are whole numbers",
    )
    max_rejected_share: float = Field(
        1.0,
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="Past this share of rejected rows (0 to 1), the upload fails whole with"
        " 422 `too_many_rejects` and loads nothing; default 1: never",
    )

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        return None if value is None else codec_name(value)

    @field_validator("columns")
    @classmethod
    def _column_pairs(cls, value: str | None) -> str | None:
        if value is not None:
            renamed(value)
        return value

    @field_validator("date_format")
    @classmethod
    def _understood_date_format(cls, value: str | None) -> str | None:
        if value is not None:
            parse_date_format(value)
        return value

    def options(self) -> UploadOptions:
        return UploadOptions(
            on_conflict=self.on_conflict,
            delimiter=DELIMITERS[self.delimiter] if self.delimiter else None,
            decimal=DECIMALS[self.decimal] if self.decimal else None,
            encoding=self.encoding,
            date_format=parse_date_format(self.date_format) if self.date_format else None,
            sheet=self.sheet,
            max_rejected_share=self.max_rejected_share,
            renamed=renamed(self.columns) if self.columns else (),
            effective_from=self.effective_from,
            text_ids=self.ids == "text",
        )


UploadQueryDep = Annotated[UploadQuery, Query()]

_SEMANTICS = (
    " Streams the file into PostgreSQL, checks every row, loads the good ones and"
    " quarantines the rest with a reason, all in one transaction. Re-uploading the"
    " same rows changes nothing; a stored id with other values is a `conflict` unless"
    " `on_conflict=update`."
)


def _body(columns: str, example: str) -> dict[str, Any]:
    """The multipart body of an upload of one kind, for the OpenAPI document."""
    description = (
        f"A CSV file (header required: `{columns}`; delimiter `,` `;` tab or `|`; UTF-8,"
        f" UTF-16 with BOM, Windows-1252 or Latin-1), an `.xlsx` workbook or a Parquet file,"
        f" told apart by their bytes. Example: `{example}`."
    )
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {
                                "type": "string",
                                "format": "binary",
                                "description": description,
                            }
                        },
                    }
                }
            },
        }
    }


@dataclass(frozen=True)
class Uploading:
    """What an upload request is handed."""

    engine: AsyncEngine
    session: AsyncSession
    settings: Settings
    metrics: Metrics
    alerter: Alerter


def get_uploading(
    engine: EngineDep,
    session: SessionDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    alerter: AlerterDep,
) -> Uploading:
    return Uploading(engine, session, settings, metrics, alerter)


UploadingDep = Annotated[Uploading, Depends(get_uploading)]


def _limits(settings: Settings) -> UploadLimits:
    """What an upload may take, from the settings."""
    return UploadLimits(
        max_bytes=settings.max_upload_bytes,
        work_mem=settings.upload_work_mem,
        summarizer_min_rows=settings.summarizer_min_rows,
        timezone=settings.business_timezone,
        tabular=TabularLimits(
            max_unpacked_bytes=settings.xlsx_max_unpacked_bytes,
            max_cells=settings.xlsx_max_cells,
            max_text_bytes=settings.max_upload_bytes,
            max_memory_bytes=settings.parser_max_memory_bytes,
            max_cpu_seconds=settings.parser_max_cpu_seconds,
            max_seconds=settings.parser_max_seconds,
        ),
    )


async def _ingest(
    kind: UploadKind, request: Request, uploading: Uploading, query: UploadQuery
) -> UploadReport:
    engine, session = uploading.engine, uploading.session
    settings, metrics = uploading.settings, uploading.metrics
    if query.effective_from is not None and kind is not UploadKind.PRODUCTS:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", "effective_from"),
                    "msg": "effective_from applies to products uploads only",
                    "type": "value_error",
                }
            ]
        )
    started = time.perf_counter()
    try:
        upload_id = await service.ingest(
            engine=engine,
            limits=_limits(settings),
            kind=kind,
            options=query.options(),
            content_type=request.headers.get("content-type"),
            body=request.stream(),
        )
    except BaseException as exc:
        # CancelledError: the client went away mid-upload.
        result = "cancelled" if isinstance(exc, asyncio.CancelledError) else "failed"
        metrics.ingest_done(kind.value, result, time.perf_counter() - started)
        failed = (exc.details or {}).get("upload_id") if isinstance(exc, AppError) else None
        if isinstance(exc, AppError) and isinstance(failed, int):  # an upload in the history
            uploading.alerter.soon(
                [alerts.upload_failed(kind.value, failed, exc.code, exc.message)]
            )
        raise
    row = await repository.get(session=session, upload_id=upload_id)
    assert row is not None
    metrics.ingest_done(kind.value, "succeeded", time.perf_counter() - started, row)
    if kind is UploadKind.ORDERS and row["rows_inserted"] + row["rows_updated"]:
        uploading.alerter.soon(
            alerts.demand_spikes(
                engine, upload_id, settings.alert_spike_factor, settings.alert_spike_min_units
            )
        )
    return UploadReport.of(row)


def _upload_route(
    kind: UploadKind, example: str
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """The POST route of an upload of one kind, documented: the handler's docstring is its
    summary (first paragraph) and the start of its description."""

    def declare(endpoint: DecoratedCallable) -> DecoratedCallable:
        summary, _, description = inspect.cleandoc(endpoint.__doc__ or "").partition("\n\n")
        return router.post(
            f"/{kind.value}",
            status_code=status.HTTP_201_CREATED,
            summary=summary,
            description=" ".join(description.split()) + _SEMANTICS,
            dependencies=[ApiKeyDep],
            responses=ERRORS,
            openapi_extra=_body(",".join(RULES[kind].required), example),
        )(endpoint)

    return declare


@_upload_route(UploadKind.PRODUCTS, "1,Shirt,Shirts,179.34")
async def upload_products(
    request: Request, uploading: UploadingDep, query: UploadQueryDep
) -> UploadReport:
    """Upload a products CSV

    Products: `id,name,category,price` (price in BRL), optionally `effective_from` (the
    date the price takes effect from)."""
    return await _ingest(UploadKind.PRODUCTS, request, uploading, query)


@_upload_route(UploadKind.ORDERS, "1,1,2,2024-12-01")
async def upload_orders(
    request: Request, uploading: UploadingDep, query: UploadQueryDep
) -> UploadReport:
    """Upload an orders CSV

    Orders: `id,product_id,quantity,created_date`, optionally `unit_price` (the BRL price
    charged per unit; else the product's price in effect on the order's date)."""
    return await _ingest(UploadKind.ORDERS, request, uploading, query)


@router.post(
    "/{kind}",
    status_code=status.HTTP_201_CREATED,
    include_in_schema=False,
    dependencies=[ApiKeyDep],
)
async def upload_unknown_kind(
    request: Request,
    uploading: UploadingDep,
    query: UploadQueryDep,
    kind: Annotated[UploadKind, Path(description="`products` or `orders`")],
) -> UploadReport:
    """Any other kind is 422 (FastAPI refuses the path parameter); the two kinds have
    operations of their own above, which match first."""
    return await _ingest(kind, request, uploading, query)
