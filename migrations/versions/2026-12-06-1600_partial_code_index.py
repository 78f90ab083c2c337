"""Orders' codes unique where there is one: a partial unique index in place of the
unique constraint, so that rows without a code (integer ids) add no index entry. A 1M-row
insert paid ~0.3-0.5 s for the NULL entries (issue 27, item 6).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 16:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint("uq_orders_code", "orders", type_="unique")
    op.execute("CREATE UNIQUE INDEX uq_orders_code ON orders (code) WHERE code IS NOT NULL")


def downgrade() -> None:
    op.drop_index("uq_orders_code", table_name="orders")
    op.create_unique_constraint("uq_orders_code", "orders", ["code"])
