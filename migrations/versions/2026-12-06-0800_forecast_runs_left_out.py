"""What a forecast run left out of its series, and why: orders dated after the day it ran
(a typo such as 2999-12-31 must not move `data_until` into the future, nor reach pandas),
and orders older than FORECAST_HISTORY_DAYS before `data_until`.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 08:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("forecast_runs", sa.Column("left_out", JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("forecast_runs", "left_out")
