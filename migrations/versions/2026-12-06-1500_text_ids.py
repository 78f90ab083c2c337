"""Text ids (issue 27, item 4): a product's or an order line's id as the file wrote it
when it is not an integer (`code`, unique), with a negative surrogate key from a sequence
of its own; integer ids stay their own keys.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 15:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHECKS = {
    "products": (
        "product_id_range",
        "product_id BETWEEN 1 AND 2147483647",
        "CASE WHEN code IS NULL THEN product_id BETWEEN 1 AND 2147483647 ELSE product_id < 0 END",
    ),
    "orders": (
        "order_id_positive",
        "order_id >= 1",
        "CASE WHEN code IS NULL THEN order_id >= 1 ELSE order_id < 0 END",
    ),
}


def upgrade() -> None:
    for table, (name, _, check) in CHECKS.items():
        op.add_column(table, sa.Column("code", sa.String(length=64), nullable=True))
        op.create_unique_constraint(op.f(f"uq_{table}_code"), table, ["code"])
        op.drop_constraint(op.f(f"ck_{table}_{name}"), table, type_="check")
        op.create_check_constraint(name, table, check)
    op.execute("CREATE SEQUENCE product_code_ids AS integer")
    op.execute("CREATE SEQUENCE order_code_ids AS bigint")


def downgrade() -> None:
    # Rows with text ids cannot be kept without them, and dropping them would leave the
    # rollups counting orders that are gone: refused rather than lost.
    coded = op.get_bind().execute(
        sa.text(
            "SELECT EXISTS (SELECT 1 FROM products WHERE code IS NOT NULL)"
            " OR EXISTS (SELECT 1 FROM orders WHERE code IS NOT NULL)"
        )
    )
    if coded.scalar():
        raise RuntimeError("text ids are stored: delete those products and orders first")
    op.execute("DROP SEQUENCE order_code_ids")
    op.execute("DROP SEQUENCE product_code_ids")
    for table, (name, old, _) in CHECKS.items():
        op.drop_constraint(op.f(f"ck_{table}_{name}"), table, type_="check")
        op.create_check_constraint(name, table, old)
        op.drop_constraint(op.f(f"uq_{table}_code"), table, type_="unique")
        op.drop_column(table, "code")
