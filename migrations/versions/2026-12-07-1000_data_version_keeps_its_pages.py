"""`data_version` keeps its pages (issue 25, item 7): autovacuum no longer truncates it.

Every kept answer is served after a read of this one-row table. Its row is rewritten by
every upload (a statement-level trigger per table written), so autovacuum visits it
about once a minute under uploads, and each visit ended by truncating the empty pages at
its end: an ACCESS EXCLUSIVE lock held across the WAL flush of the truncation. Every
version read waited for it (60–250 ms in the benchmark), and under 32 connections
that was the p99 of a run. Without the truncation a vacuum takes only a lock that reads
pass; the few empty pages stay, and updates reuse them.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 10:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE data_version SET (vacuum_truncate = false)")


def downgrade() -> None:
    op.execute("ALTER TABLE data_version RESET (vacuum_truncate)")
