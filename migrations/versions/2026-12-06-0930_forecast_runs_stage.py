"""A forecast run's stage, in words, beside its progress (issue 26, item 5).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 09:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("forecast_runs", sa.Column("stage", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("forecast_runs", "stage")
