"""File-level upload errors (SPEC section 2): each rejects the whole upload."""

from __future__ import annotations

from app.errors import AppError, NotFound


class UploadError(AppError):
    """A problem with the file as a whole: nothing of it is loaded."""

    status_code = 422


class MissingFile(UploadError):
    code = "missing_file"


class EmptyFile(UploadError):
    code = "empty_file"


class MissingColumns(UploadError):
    code = "missing_columns"


class DuplicateColumns(UploadError):
    code = "duplicate_columns"


class Undecodable(UploadError):
    """No reading of the bytes gives clean text or rows (SPEC §2 as issue 14 changed it:
    was `not_utf8`)."""

    code = "undecodable"


class UnreadableFile(UploadError):
    """The process reading a workbook or Parquet file ended without reading it (a crash
    or an abort of the native reader: issue 25); nothing else was affected."""

    code = "unreadable_file"


class TooManyRejects(UploadError):
    """More of the file's rows were rejected than the upload's `max_rejected_share`
    allows: nothing of it is loaded (issue 27)."""

    code = "too_many_rejects"


class HeaderTooLong(UploadError):
    code = "header_too_long"


class TooLarge(UploadError):
    status_code = 413
    code = "too_large"

    def __init__(
        self,
        max_bytes: int,
        *,
        what: str = "The upload is larger than the limit of",
        setting: str = "MAX_UPLOAD_BYTES",
        unit: str = "bytes",
    ) -> None:
        super().__init__(
            f"{what} {max_bytes} {unit} ({setting}).",
            details={"max_bytes" if unit == "bytes" else f"max_{unit}": max_bytes},
        )


class ClientGone(UploadError):
    """The client closed the connection before the whole file arrived."""

    status_code = 400
    code = "client_disconnected"


class UploadNotFound(NotFound):
    code = "upload_not_found"
