"""The command line's tables, as a terminal of 80 columns shows them."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from app.cli.client import uploads_table

LONG_NAME = "orders-from-the-erp-export-of-november-2024-final-v2.csv"
LONG_ERROR = (
    "The file lacks the required columns: created_date, quantity. Its header has id,"
    " product_id, qty, date"
)


def _upload(upload_id: int, filename: str, *, failed: bool = False, rows: int = 300) -> Any:
    return {
        "upload_id": upload_id,
        "kind": "orders",
        "filename": filename,
        "status": "failed" if failed else "succeeded",
        "rows_total": 0 if failed else rows,
        "rows_inserted": 0 if failed else rows,
        "rows_updated": 0,
        "rows_unchanged": 0,
        "rows_rejected": 0,
        "started_at": "2026-12-02T05:40:00+00:00",
        "error": {"code": "missing_columns", "message": LONG_ERROR} if failed else None,
    }


def render(items: list[dict[str, Any]], width: int) -> list[str]:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(uploads_table(items))
    return out.getvalue().splitlines()


class TestUploadsTable:
    def test_at_80_columns_file_names_are_never_broken(self) -> None:
        items = [
            _upload(3, "orders-20k.csv", failed=True),
            _upload(2, LONG_NAME, rows=1_000_000),
            _upload(1, "products.csv"),
        ]
        lines = render(items, 80)
        assert max(len(line) for line in lines) <= 80
        for name in ("orders-20k.csv", LONG_NAME, "products.csv"):
            assert [line for line in lines if name in line], f"{name} is cut: {lines}"
        assert "1,000,000" in "\n".join(lines)

    def test_a_failed_uploads_error_has_lines_of_its_own(self) -> None:
        lines = render([_upload(3, "orders-20k.csv", failed=True), _upload(2, "a.csv")], 80)
        [row] = [line for line in lines if line.lstrip().startswith("3 ")]
        assert "missing_columns" not in row
        text = " ".join(" ".join(lines).split())
        assert f"missing_columns: {LONG_ERROR}" in text
        error_lines = [line for line in lines if "missing_columns" in line]
        assert error_lines and all(line.startswith("    ") for line in error_lines)

    def test_short_names_stay_on_the_row_when_there_is_room(self) -> None:
        lines = render([_upload(2, "orders.csv"), _upload(1, "products.csv")], 80)
        [row] = [line for line in lines if line.lstrip().startswith("2 ")]
        assert row.rstrip().endswith("orders.csv")
        assert "file" in lines[1]

    def test_millions_in_every_column_still_fit(self) -> None:
        big = {**_upload(1, "big.csv"), "rows_total": 4_000_000}
        big.update(rows_inserted=1_000_000, rows_updated=1_000_000)
        big.update(rows_unchanged=1_000_000, rows_rejected=1_000_000)
        lines = render([big], 80)
        assert max(len(line) for line in lines) <= 80
        assert "4000000" in "\n".join(lines)
