"""Feed reads say who read: `syncs.consumer` (the name a reader gives, `?consumer=`; the
warehouse sync's `--consumer`) and `syncs.dataset` (where it loads them), so that
GET /freshness can say how old each consumer's copy is (issue 28).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 17:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("syncs", sa.Column("consumer", sa.String(length=64), nullable=True))
    op.add_column("syncs", sa.Column("dataset", sa.String(length=64), nullable=True))
    op.create_index("ix_syncs_consumer", "syncs", ["consumer", "dataset", "finished_at"])


def downgrade() -> None:
    op.drop_index("ix_syncs_consumer", table_name="syncs")
    op.drop_column("syncs", "dataset")
    op.drop_column("syncs", "consumer")
