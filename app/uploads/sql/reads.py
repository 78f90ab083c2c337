"""Reads of the uploads' results: reports, history, rejects."""

from __future__ import annotations

UPLOAD_COLUMNS = """
upload_id, kind, filename, sha256, status, on_conflict, rows_total, rows_inserted,
rows_updated, rows_unchanged, rows_rejected, rejects_by_code, warnings, bytes_received,
columns, dialect, error, started_at, finished_at
"""

GET_UPLOAD = f"SELECT {UPLOAD_COLUMNS} FROM uploads WHERE upload_id = :id"

# Newest first, keyset on upload_id.
PAGE_UPLOADS = f"""
SELECT {UPLOAD_COLUMNS} FROM uploads
WHERE (CAST(:before AS bigint) IS NULL OR upload_id < :before)
    AND (CAST(:kind AS text) IS NULL OR kind = :kind)
ORDER BY upload_id DESC LIMIT :limit
"""

# An upload still `running` whose loading session is gone (its lock is free) died with
# its process or connection: nothing of it committed, so it is failed.
SWEEP_DEAD = """
UPDATE uploads SET status = 'failed', finished_at = clock_timestamp(),
    error = jsonb_build_object('code', 'interrupted', 'message',
        'The upload stopped before it finished; nothing of it was loaded.')
WHERE status = 'running' AND pg_try_advisory_xact_lock(:base + upload_id)
"""

PAGE_REJECTS = """
SELECT row_number, error_code, error_message, fields FROM rejects
WHERE upload_id = :id AND row_number > :after
ORDER BY row_number LIMIT :limit
"""

ALL_REJECTS = """
SELECT row_number, error_code, error_message, fields FROM rejects
WHERE upload_id = :id ORDER BY row_number
"""

WIDEST_REJECT = "SELECT max(cardinality(fields)) FROM rejects WHERE upload_id = :id"
