"""predicted_level_demand: the total's and each category's own forecast per run and day,
reconciled, with `unallocated` (what of a category's forecast no product's holds). It
moves the data version as the other forecast tables do (migration 0010).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "predicted_level_demand"
TRIGGER = "bump_data_version"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("quantity", sa.Double(), nullable=False),
        sa.Column("lo_80", sa.Double(), nullable=False),
        sa.Column("hi_80", sa.Double(), nullable=False),
        sa.Column("lo_95", sa.Double(), nullable=False),
        sa.Column("hi_95", sa.Double(), nullable=False),
        sa.Column("unallocated", sa.Double(), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.CheckConstraint(
            "level IN ('total', 'category')", name=op.f("ck_predicted_level_demand_level_known")
        ),
        sa.CheckConstraint(
            "0 <= lo_95 AND lo_95 <= lo_80 AND lo_80 <= quantity AND quantity <= hi_80"
            " AND hi_80 <= hi_95 AND 0 <= unallocated AND unallocated <= quantity + 1e-9",
            name=op.f("ck_predicted_level_demand_intervals_ordered"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["forecast_runs.run_id"],
            name=op.f("fk_predicted_level_demand_run_id_forecast_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "run_id", "level", "key", "date", name=op.f("pk_predicted_level_demand")
        ),
    )
    op.execute(
        f"CREATE TRIGGER {TRIGGER} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {TABLE}"
        f" FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version()"
    )
    op.execute(f"ALTER TABLE {TABLE} ENABLE ALWAYS TRIGGER {TRIGGER}")


def downgrade() -> None:
    op.drop_table(TABLE)
