"""Uploads (history, progress and reports) and the rows they quarantined."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    PrimaryKeyConstraint,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel

# Re-exported: the uploads' choices, defined with the command line's in app.choices.
from app.choices import OnConflict as OnConflict
from app.choices import UploadKind as UploadKind


class UploadStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class RejectCode(StrEnum):
    """Why a row was quarantined (SPEC section 2); stable, part of the API."""

    MISSING_VALUE = "missing_value"
    INVALID_INTEGER = "invalid_integer"
    INVALID_DECIMAL = "invalid_decimal"
    INVALID_DATE = "invalid_date"
    OUT_OF_RANGE = "out_of_range"
    TOO_LONG = "too_long"
    UNKNOWN_PRODUCT = "unknown_product"
    DUPLICATE_IN_FILE = "duplicate_in_file"
    CONFLICT = "conflict"
    WRONG_FIELD_COUNT = "wrong_field_count"


def _one_of(column: str, enum: type[StrEnum]) -> str:
    values = ", ".join(f"'{member.value}'" for member in enum)
    return f"{column} IN ({values})"


def _counter() -> Column[int]:
    return Column(BigInteger, nullable=False, server_default=text("0"))


class Upload(SQLModel, table=True):
    __tablename__ = "uploads"
    __table_args__ = (
        CheckConstraint(_one_of("kind", UploadKind), name="kind_known"),
        CheckConstraint(_one_of("status", UploadStatus), name="status_known"),
        CheckConstraint(_one_of("on_conflict", OnConflict), name="on_conflict_known"),
        CheckConstraint(
            "rows_total >= 0 AND rows_inserted >= 0 AND rows_updated >= 0"
            " AND rows_unchanged >= 0 AND rows_rejected >= 0 AND bytes_received >= 0",
            name="counts_not_negative",
        ),
        CheckConstraint("(status = 'running') = (finished_at IS NULL)", name="finished_when_done"),
    )

    upload_id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger, Identity(always=False), primary_key=True),
    )
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    filename: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    sha256: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    status: str = Field(
        default=UploadStatus.RUNNING,
        sa_column=Column(String(16), nullable=False, server_default=UploadStatus.RUNNING.value),
    )
    on_conflict: str = Field(
        default=OnConflict.REJECT,
        sa_column=Column(String(16), nullable=False, server_default=OnConflict.REJECT.value),
    )
    rows_total: int = Field(default=0, sa_column=_counter())
    rows_inserted: int = Field(default=0, sa_column=_counter())
    rows_updated: int = Field(default=0, sa_column=_counter())
    rows_unchanged: int = Field(default=0, sa_column=_counter())
    rows_rejected: int = Field(default=0, sa_column=_counter())
    bytes_received: int = Field(default=0, sa_column=_counter())
    rejects_by_code: dict[str, int] = Field(
        default_factory=dict,
        sa_column=Column(JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    )
    warnings: list[str] = Field(
        default_factory=list,
        sa_column=Column(JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    )
    columns: list[str] | None = Field(default=None, sa_column=Column(ARRAY(Text), nullable=True))
    # format, encoding, delimiter, decimal, date_format (uploads/dialect.py)
    dialect: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    error: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    started_at: datetime | None = Field(
        default=None,
        sa_column=Column(
            DateTime(timezone=True), nullable=False, server_default=func.now(), index=True
        ),
    )
    finished_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    # Taken from the `change_seq` sequence under the merge lock: uploads commit in this
    # order, so it is the feeds' cursor (upload ids are in the order uploads started).
    change_seq: int | None = Field(
        default=None, sa_column=Column(BigInteger, nullable=True, unique=True, index=True)
    )


class Reject(SQLModel, table=True):
    """One quarantined row: its fields as received, where it was and why."""

    __tablename__ = "rejects"
    __table_args__ = (
        PrimaryKeyConstraint("upload_id", "row_number"),
        CheckConstraint(_one_of("error_code", RejectCode), name="error_code_known"),
    )

    upload_id: int = Field(
        sa_column=Column(
            BigInteger, ForeignKey("uploads.upload_id", ondelete="CASCADE"), nullable=False
        )
    )
    row_number: int = Field(sa_column=Column(BigInteger, nullable=False))
    error_code: str = Field(sa_column=Column(String(32), nullable=False))
    error_message: str = Field(sa_column=Column(Text, nullable=False))
    fields: list[str] = Field(sa_column=Column(ARRAY(Text), nullable=False))
