"""The service's instance id (issue 28): the warehouse dataset a sync loads into unless
told another (`orderlens sync --dataset`), so that two services syncing into one
warehouse stay apart. One row, made here: `orderlens_` and 10 random hex digits (a
valid schema and BigQuery dataset name).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 22:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "instance",
        sa.Column("one", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("instance_id", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("one", name=op.f("ck_instance_one_row")),
        sa.PrimaryKeyConstraint("one", name=op.f("pk_instance")),
    )
    op.execute(
        "INSERT INTO instance (instance_id)"
        " VALUES ('orderlens_' || substr(md5(gen_random_uuid()::text), 1, 10))"
    )


def downgrade() -> None:
    op.drop_table("instance")
