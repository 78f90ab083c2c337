"""Bookkeeping: the upload's own row, the locks that order uploads, and the settings an
upload's transaction runs under."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

from app.uploads.models import UploadKind

# Keys of advisory locks. One (transaction-level) for all merges, so that uploads that
# overlap commit one after the other, as if run in sequence, and never deadlock; one
# (session-level) per upload, held by the loading session, so readers can tell a dead
# upload from a running one.
MERGE_LOCK_KEY = 0x4F4C_0000_0000_0000
UPLOAD_LOCK_BASE = 0x4F4C_0001_0000_0000

CREATE_UPLOAD = """
INSERT INTO uploads (kind, filename, on_conflict) VALUES ($1, $2, $3) RETURNING upload_id
"""
TAKE_UPLOAD_LOCK = "SELECT pg_advisory_lock($1)"
RELEASE_UPLOAD_LOCK = "SELECT pg_advisory_unlock($1)"
TAKE_MERGE_LOCK = "SELECT pg_advisory_xact_lock($1)"

WRITE_PROGRESS = """
UPDATE uploads SET bytes_received = $2, rows_total = $3
WHERE upload_id = $1 AND status = 'running'
"""

# Under the merge lock, at the end of the upload's transaction: uploads take their change
# number in the order they commit, so a feed's cursor (the highest committed number) never
# passes an upload that commits later.
FINISH_UPLOAD = """
UPDATE uploads SET status = 'succeeded', finished_at = clock_timestamp(),
    change_seq = nextval('change_seq'),
    sha256 = $2, columns = $3, warnings = $4, bytes_received = $5,
    rows_total = $6, rows_inserted = $7, rows_updated = $8, rows_unchanged = $9,
    rows_rejected = $10, rejects_by_code = $11, dialect = $12
WHERE upload_id = $1
"""


@dataclass(frozen=True)
class FinishedUpload:
    """The parameters of `FINISH_UPLOAD`, by name: each field is the column it sets, in
    the order of the statement's parameters ($1 the upload, $2 `sha256` … $12 `dialect`)."""

    upload_id: int
    sha256: str
    columns: list[str]
    warnings: list[str]
    bytes_received: int
    rows_total: int
    rows_inserted: int
    rows_updated: int
    rows_unchanged: int
    rows_rejected: int
    rejects_by_code: dict[str, int]
    dialect: dict[str, Any]

    def args(self) -> tuple[Any, ...]:
        """The statement's positional parameters; the jsonb columns as JSON text."""
        values = ((field.name, getattr(self, field.name)) for field in fields(self))
        return tuple(json.dumps(v) if name in _JSON_COLUMNS else v for name, v in values)


_JSON_COLUMNS = frozenset({"warnings", "rejects_by_code", "dialect"})

MARK_FAILED = """
UPDATE uploads SET status = 'failed', finished_at = clock_timestamp(),
    error = $2, bytes_received = $3, dialect = $4
WHERE upload_id = $1 AND status = 'running'
"""

STORED_IN_RANGE = {
    UploadKind.ORDERS: "SELECT EXISTS (SELECT 1 FROM orders WHERE order_id BETWEEN $1 AND $2)",
    UploadKind.PRODUCTS: (
        "SELECT EXISTS (SELECT 1 FROM products WHERE product_id BETWEEN $1 AND $2)"
    ),
}

CAN_CHECK_KEYS_BY_SET = "SELECT has_parameter_privilege('session_replication_role', 'SET')"
SKIP_KEY_TRIGGERS = "SELECT set_config('session_replication_role', 'replica', true)"
RESTORE_KEY_TRIGGERS = "SELECT set_config('session_replication_role', 'origin', true)"
SET_LOCAL_WORK_MEM = "SELECT set_config('work_mem', $1, true)"
SET_LOCAL_LOCK_TIMEOUT = "SELECT set_config('lock_timeout', $1, true)"
# An upload's transaction waits, idle, for its summarizer's sums, and a summarizer started
# while its upload stages waits, idle, for the upload to hold the merge lock: a server's
# idle-transaction timeout must end neither.
SET_LOCAL_NO_IDLE_TIMEOUT = "SELECT set_config('idle_in_transaction_session_timeout', '0', true)"
# The upload writing in this transaction, stamped on the rows it inserts or changes.
SET_LOCAL_UPLOAD = "SELECT set_config('orderlens.upload_id', $1, true)"
# Read once per statement (an InitPlan), not once per row.
CURRENT_UPLOAD = "(SELECT CAST(current_setting('orderlens.upload_id') AS bigint))"
# Names the connection in pg_stat_activity for this transaction only (operators, tests).
SET_LOCAL_NAME = "SELECT set_config('application_name', $1, true)"
