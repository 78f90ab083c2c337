"""A feed read is finished when its reader's destination committed the rows (issue 28):
`syncs.sent_at` (the file was sent whole) and `syncs.report_digest` (the reader said it
will report its commit, `?report=true`: `finished_at` waits for POST /syncs/finished with
the token the read answered with, whose SHA-256 this is).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 19:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("syncs", sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("syncs", sa.Column("report_digest", sa.LargeBinary(), nullable=True))
    # Reads before this one were finished when sent.
    op.execute("UPDATE syncs SET sent_at = finished_at")


def downgrade() -> None:
    op.drop_column("syncs", "report_digest")
    op.drop_column("syncs", "sent_at")
