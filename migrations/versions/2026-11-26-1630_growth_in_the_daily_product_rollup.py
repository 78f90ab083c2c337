"""Growth kept in the daily product rollup: units of the calendar day before and of the
previous sale day, and the two growths they give; the key leads with the product.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 16:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "product_daily_sales"


def upgrade() -> None:
    op.drop_constraint("pk_product_daily_sales", TABLE, type_="primary")
    op.create_primary_key("pk_product_daily_sales", TABLE, ["product_id", "created_date"])
    op.add_column(
        TABLE,
        sa.Column("prev_quantity", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column(TABLE, sa.Column("prev_sale_date", sa.Date(), nullable=True))
    op.add_column(TABLE, sa.Column("prev_sale_quantity", sa.BigInteger(), nullable=True))
    # Stored rows get their neighbours' units before the computed columns exist.
    op.execute(
        """
        UPDATE product_daily_sales t
        SET prev_quantity = x.prev_quantity, prev_sale_date = x.prev_sale_date,
            prev_sale_quantity = x.prev_sale_quantity
        FROM (
            SELECT product_id, created_date,
                CASE WHEN lag(created_date) OVER w = created_date - 1
                    THEN lag(quantity) OVER w ELSE 0 END AS prev_quantity,
                lag(created_date) OVER w AS prev_sale_date,
                lag(quantity) OVER w AS prev_sale_quantity
            FROM product_daily_sales
            WINDOW w AS (PARTITION BY product_id ORDER BY created_date)
        ) x
        WHERE t.product_id = x.product_id AND t.created_date = x.created_date
        """
    )
    op.add_column(
        TABLE,
        sa.Column(
            "calendar_growth",
            sa.BigInteger(),
            sa.Computed("quantity - prev_quantity", persisted=True),
        ),
    )
    op.add_column(
        TABLE,
        sa.Column(
            "sale_growth",
            sa.BigInteger(),
            sa.Computed("quantity - prev_sale_quantity", persisted=True),
        ),
    )
    op.create_check_constraint(
        op.f("ck_product_daily_sales_previous_sale_before"), TABLE, "prev_sale_date < created_date"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_product_daily_sales_previous_sale_before"), TABLE, type_="check")
    for column in (
        "sale_growth",
        "calendar_growth",
        "prev_sale_quantity",
        "prev_sale_date",
        "prev_quantity",
    ):
        op.drop_column(TABLE, column)
    op.drop_constraint("pk_product_daily_sales", TABLE, type_="primary")
    op.create_primary_key("pk_product_daily_sales", TABLE, ["created_date", "product_id"])
