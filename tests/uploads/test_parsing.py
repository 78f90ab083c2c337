"""The careful path's parser, on its own."""

import tempfile

from app.uploads.models import OnConflict, UploadKind
from app.uploads.parsing import careful_rows, parse_header
from app.uploads.plan import Plan, StagingPath


def test_careful_rows_counts_records_for_progress() -> None:
    header = parse_header("id,name,category,price", ("id", "name", "category", "price"))
    seen: list[int] = []
    with tempfile.TemporaryFile() as spool:
        spool.write(b'1,a,b,1\n\n2,"two\nlines",b,2\n3,c\n')
        spool.flush()
        plan = Plan(
            kind=UploadKind.PRODUCTS,
            on_conflict=OnConflict.REJECT,
            path=StagingPath.CAREFUL,
            order=header.order,
            header_lines=1,
            width=4,
        )
        out = b"".join(careful_rows(spool, header, plan, seen.append))
    assert seen[-1] == 3  # a blank line is not a record; a quoted newline is one record
    assert out.count(b"\n") >= 3
