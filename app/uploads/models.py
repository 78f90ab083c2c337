"""Uploads (history, progress and reports) and the rows they quarantined."""

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, MappedColumn, mapped_column

from app.choices import JobStatus

# Re-exported: the uploads' choices, defined with the command line's in app.choices.
from app.choices import OnConflict as OnConflict
from app.choices import UploadKind as UploadKind
from app.db.base import Base, identity_key, one_of, set_on_insert


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


def _counter() -> MappedColumn[int]:
    return mapped_column(sa.BigInteger, server_default=sa.text("0"))


class Upload(Base):
    __tablename__ = "uploads"
    __table_args__ = (
        sa.CheckConstraint(one_of("kind", UploadKind), name="kind_known"),
        sa.CheckConstraint(one_of("status", JobStatus), name="status_known"),
        sa.CheckConstraint(one_of("on_conflict", OnConflict), name="on_conflict_known"),
        sa.CheckConstraint(
            "rows_total >= 0 AND rows_inserted >= 0 AND rows_updated >= 0"
            " AND rows_unchanged >= 0 AND rows_rejected >= 0 AND bytes_received >= 0",
            name="counts_not_negative",
        ),
        sa.CheckConstraint(
            "(status = 'running') = (finished_at IS NULL)", name="finished_when_done"
        ),
    )

    upload_id: Mapped[int] = identity_key()
    kind: Mapped[str] = mapped_column(sa.String(16))
    filename: Mapped[str | None] = mapped_column(sa.Text)
    sha256: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16), server_default=JobStatus.RUNNING.value)
    on_conflict: Mapped[str] = mapped_column(sa.String(16), server_default=OnConflict.REJECT.value)
    rows_total: Mapped[int] = _counter()
    rows_inserted: Mapped[int] = _counter()
    rows_updated: Mapped[int] = _counter()
    rows_unchanged: Mapped[int] = _counter()
    rows_rejected: Mapped[int] = _counter()
    bytes_received: Mapped[int] = _counter()
    rejects_by_code: Mapped[dict[str, int]] = mapped_column(
        JSONB, server_default=sa.text("'{}'::jsonb")
    )
    warnings: Mapped[list[str]] = mapped_column(JSONB, server_default=sa.text("'[]'::jsonb"))
    columns: Mapped[list[str] | None] = mapped_column(ARRAY(sa.Text))
    # format, encoding, delimiter, decimal, date_format (uploads/dialect.py)
    dialect: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    started_at: Mapped[datetime] = set_on_insert(index=True)
    finished_at: Mapped[datetime | None]
    # Taken from the `change_seq` sequence under the merge lock: uploads commit in this
    # order, so it is the feeds' cursor (upload ids are in the order uploads started).
    change_seq: Mapped[int | None] = mapped_column(sa.BigInteger, unique=True, index=True)


class Reject(Base):
    """One quarantined row: its fields as received, where it was and why."""

    __tablename__ = "rejects"
    __table_args__ = (
        sa.PrimaryKeyConstraint("upload_id", "row_number"),
        sa.CheckConstraint(one_of("error_code", RejectCode), name="error_code_known"),
    )

    upload_id: Mapped[int] = mapped_column(
        sa.BigInteger, sa.ForeignKey("uploads.upload_id", ondelete="CASCADE")
    )
    row_number: Mapped[int] = mapped_column(sa.BigInteger)
    error_code: Mapped[str] = mapped_column(sa.String(32))
    error_message: Mapped[str] = mapped_column(sa.Text)
    fields: Mapped[list[str]] = mapped_column(ARRAY(sa.Text))
