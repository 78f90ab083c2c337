"""The dialect each upload was read in (issue 14): format, encoding, delimiter, decimal
separator and date format, as the report shows them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 13:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("uploads", sa.Column("dialect", postgresql.JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("uploads", "dialect")
