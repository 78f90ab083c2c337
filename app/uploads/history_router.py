"""GET /uploads (the upload history), one upload's report, and the rows it rejected."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, status
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.db import SessionDep
from app.errors import DATABASE_ERRORS, ErrorResponse
from app.kit.csv import csv_response
from app.kit.deps import EngineDep
from app.kit.negotiation import Format, FormatDep
from app.kit.openapi import CSV_ALSO
from app.kit.pagination import CursorQuery, Keyset, LimitQuery, Page
from app.uploads import repository
from app.uploads.errors import UploadNotFound
from app.uploads.models import UploadKind
from app.uploads.schemas import RejectPage, UploadReport

router = APIRouter(prefix="/uploads", tags=["uploads"], responses=DATABASE_ERRORS)

NO_UPLOAD: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "No such upload"}
}

# Newest upload first; a reject's rows in the file's order.
UPLOADS = Keyset[dict[str, Any]]((int,), key=lambda row: (row["upload_id"],))
REJECTS = Keyset[dict[str, Any]]((int,), key=lambda row: (row["row_number"],))


async def valid_upload(
    session: SessionDep, upload_id: Annotated[int, Path(ge=1, le=2**63 - 1)]
) -> dict[str, Any]:
    """The upload, or 404 `upload_not_found`."""
    await repository.sweep_dead(session)
    row = await repository.get(session=session, upload_id=upload_id)
    if row is None:
        raise UploadNotFound(f"There is no upload {upload_id}.")
    return row


UploadDep = Annotated[dict[str, Any], Depends(valid_upload)]


@router.get("", summary="Upload history, newest first")
async def list_uploads(
    session: SessionDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
    kind: UploadKind | None = None,
) -> Page[UploadReport]:
    await repository.sweep_dead(session)
    rows = await repository.page(
        session=session,
        limit=limit + 1,
        before=UPLOADS.after(cursor),
        kind=kind.value if kind else None,
    )
    rows, next_cursor = UPLOADS.cut(rows, limit)
    return Page[UploadReport](items=[UploadReport.of(r) for r in rows], next_cursor=next_cursor)


@router.get("/products", include_in_schema=False)
@router.get("/orders", include_in_schema=False)
async def not_an_upload_id() -> None:
    """`GET /uploads/orders`: the path is the upload's (POST), not an upload id."""
    raise StarletteHTTPException(status.HTTP_405_METHOD_NOT_ALLOWED, headers={"Allow": "POST"})


@router.get(
    "/{upload_id}",
    summary="One upload's report (with bytes and rows read while it runs)",
    responses=NO_UPLOAD,
)
async def get_upload(upload: UploadDep) -> UploadReport:
    return UploadReport.of(upload)


def reject_item(keys: list[str], row: dict[str, Any]) -> dict[str, Any]:
    """A rejected row as JSON: its fields by the header's names (`_column_N` for a blank
    one; null for a field the row lacks), then where and why it was rejected, then the
    fields past the header's (`_extra_fields`), if any."""
    fields = row["fields"]
    item: dict[str, Any] = dict(zip(keys, fields, strict=False))
    item.update(dict.fromkeys(keys[len(fields) :]))
    item["_row_number"] = row["row_number"]
    item["_error_code"] = row["error_code"]
    item["_error_message"] = row["error_message"]
    if len(fields) > len(keys):
        item["_extra_fields"] = fields[len(keys) :]
    return item


@router.get(
    "/{upload_id}/rejects",
    summary="The rows an upload quarantined, as JSON or CSV",
    response_model=RejectPage,
    responses={
        200: CSV_ALSO,
        **NO_UPLOAD,
        406: {"model": ErrorResponse, "description": "Unsupported Accept"},
    },
)
async def get_rejects(
    engine: EngineDep,
    session: SessionDep,
    upload: UploadDep,
    fmt: FormatDep,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> Response | RejectPage:
    upload_id = upload["upload_id"]
    columns: list[str] = upload["columns"] or []
    width = await repository.widest_reject(session=session, upload_id=upload_id)
    if fmt is Format.CSV:
        return csv_response(
            repository.stream_rejects_csv(
                engine=engine, upload_id=upload_id, columns=columns, width=width
            ),
            filename=f"upload-{upload_id}-rejects.csv",
        )
    rows = await repository.rejects_page(
        session=session,
        upload_id=upload_id,
        limit=limit + 1,
        after=REJECTS.after(cursor),
    )
    rows, next_cursor = REJECTS.cut(rows, limit)
    keys = [name if name.strip() else f"_column_{i + 1}" for i, name in enumerate(columns)]
    items = [reject_item(keys, r) for r in rows]
    return RejectPage(columns=columns, items=items, next_cursor=next_cursor)
