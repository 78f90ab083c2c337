"""FX rates say which published day they are: `as_of` (a weekend takes Friday's rate).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 16:03:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("fx_rates", sa.Column("as_of", sa.Date(), nullable=True))
    op.execute("UPDATE fx_rates SET as_of = rate_date")
    op.alter_column("fx_rates", "as_of", nullable=False)
    op.create_check_constraint(
        op.f("ck_fx_rates_as_of_not_after"), "fx_rates", "as_of <= rate_date"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_fx_rates_as_of_not_after"), "fx_rates", type_="check")
    op.drop_column("fx_rates", "as_of")
