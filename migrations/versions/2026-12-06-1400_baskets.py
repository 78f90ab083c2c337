"""Baskets (issue 27, item 3): an order line's basket (the file's `order_id`) and the
lines each basket has per day (`basket_days`), from which a day's orders are counted
once per basket. Stored orders have none: each stays an order of its own.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 14:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIGGER = "bump_data_version"  # migration 0005's function


def upgrade() -> None:
    op.add_column("orders", sa.Column("basket", sa.String(length=64), nullable=True))
    op.create_table(
        "basket_days",
        sa.Column("basket", sa.String(length=64), nullable=False),
        sa.Column("created_date", sa.Date(), nullable=False),
        sa.Column("lines", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("lines > 0", name=op.f("ck_basket_days_lines_positive")),
        sa.PrimaryKeyConstraint("basket", "created_date", name=op.f("pk_basket_days")),
    )
    op.execute(
        f"CREATE TRIGGER {TRIGGER} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE"
        f" ON basket_days FOR EACH STATEMENT EXECUTE FUNCTION {TRIGGER}()"
    )
    op.execute(f"ALTER TABLE basket_days ENABLE ALWAYS TRIGGER {TRIGGER}")


def downgrade() -> None:
    op.drop_table("basket_days")
    op.drop_column("orders", "basket")
