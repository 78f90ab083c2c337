"""Rejects: every rejected row quarantined with its fields as received, in the file's
order, its line and its reason."""

from __future__ import annotations

from functools import cache

from app.uploads.models import UploadKind
from app.uploads.plan import Plan
from app.uploads.sql import orders, products, staging


@cache
def insert(plan: Plan) -> str:
    """$1: the upload's id."""
    rejected = orders.REJECTED if plan.kind is UploadKind.ORDERS else products.REJECTED
    return f"""
INSERT INTO rejects (upload_id, row_number, error_code, error_message, fields)
SELECT $1, c.line, c.problem[1], c.problem[2], s.fields
FROM ({rejected}) c JOIN ({staging.fields_by_ord(plan)}) s ON s.ord = c.ord
"""


# Of an upload's rejects, those whose created_date ($2: its column, from 1) was written
# as a date-time and rejected as no real date: not converted (the report's timestamps).
INVALID_DATE_TIMES = """
SELECT count(*) FROM rejects
WHERE upload_id = $1 AND error_code = 'invalid_date' AND strpos(fields[$2], ':') > 0
"""
