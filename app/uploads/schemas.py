"""What the upload endpoints answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from app.kit.pagination import Page


class UploadDialect(BaseModel):
    """How an upload's bytes were read: detected, or as the query said."""

    format: str = Field(description="`csv`, `xlsx` or `parquet`, by the file's magic bytes")
    encoding: str | None = Field(
        description="Python codec name (`utf-8`, `utf-16`, `cp1252`, `iso8859-1`…); null for"
        " xlsx and Parquet",
        examples=["cp1252"],
    )
    delimiter: str | None = Field(
        description="The character itself (`,` `;` `\\t` `|`); null for xlsx and Parquet",
        examples=[";"],
    )
    decimal: str = Field(description="`.` or `,`: the decimal separator of prices")
    date_format: str | None = Field(
        None, description="The explicit `date_format` asked, if any (never guessed)"
    )
    timestamps: int | None = Field(
        None,
        description="Orders: how many `created_date` values were date-times, each read as"
        " its date in `timezone` (one that is not a real date-time is an `invalid_date`"
        " reject, and not counted)",
    )
    timezone: str | None = Field(
        None, description="Orders: the BUSINESS_TIMEZONE date-times were read in"
    )


# From this share of rejected rows on, a report's warnings say what it most likely means
# (and the dashboard and `orderlens ingest` show them prominently).
WARN_REJECTED_SHARE = 0.5


class UploadReport(BaseModel):
    """One upload: what it read, what it did with each row, and where the rejects are."""

    upload_id: int
    kind: str = Field(examples=["orders"])
    filename: str | None = Field(examples=["orders.csv"])
    sha256: str | None = Field(description="SHA-256 of the file's bytes, once read")
    status: str = Field(description="`running`, `succeeded` or `failed`")
    on_conflict: str = Field(description="`reject` (default) or `update`")
    rows_total: int = Field(description="Data rows read (blank lines are not rows)")
    rows_inserted: int
    rows_updated: int
    rows_unchanged: int
    rows_rejected: int
    rejected_share: float = Field(
        description="rows_rejected / rows_total (0 when no row was read)", examples=[0.25]
    )
    rejects_by_code: dict[str, int] = Field(examples=[{"unknown_product": 2}])
    warnings: list[str] = Field(
        description="What the reading noticed (extra columns, a guessed encoding …) and,"
        " when half or more of the rows were rejected, what that most likely means"
    )
    rejects_url: str
    bytes_received: int
    columns: list[str] | None = Field(description="The header as received")
    dialect: UploadDialect | None = Field(
        description="How the file was read (null when the upload failed before that was known)"
    )
    error: dict[str, Any] | None = Field(
        description="For a failed upload: `code` and `message` of what stopped it"
    )
    started_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> UploadReport:
        """The report of an upload as `repository.get` reads it."""
        total, rejected = row["rows_total"] or 0, row["rows_rejected"] or 0
        return cls(
            **row,
            rejected_share=round(rejected / total, 6) if total else 0.0,
            rejects_url=f"/uploads/{row['upload_id']}/rejects",
        )


class RejectPage(Page[dict[str, Any]]):
    """Quarantined rows: the original fields keyed by the file's header, then
    `_row_number` (the header is line 1), `_error_code` and `_error_message`."""

    columns: list[str]
