"""Rollups without foreign keys or a second index: derived data, cheap to keep exact.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 15:43:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index(
        op.f("ix_product_daily_sales_product_id_created_date"), table_name="product_daily_sales"
    )
    op.drop_constraint(
        op.f("fk_product_daily_sales_product_id_products"),
        "product_daily_sales",
        type_="foreignkey",
    )
    op.drop_constraint(
        op.f("fk_product_sales_product_id_products"), "product_sales", type_="foreignkey"
    )


def downgrade() -> None:
    op.create_foreign_key(
        op.f("fk_product_sales_product_id_products"),
        "product_sales",
        "products",
        ["product_id"],
        ["product_id"],
    )
    op.create_foreign_key(
        op.f("fk_product_daily_sales_product_id_products"),
        "product_daily_sales",
        "products",
        ["product_id"],
        ["product_id"],
    )
    op.create_index(
        op.f("ix_product_daily_sales_product_id_created_date"),
        "product_daily_sales",
        ["product_id", "created_date"],
        unique=False,
    )
