"""Price history (issue 27, item 1): every price a product has had (`product_prices`),
the unit price an order was charged (`orders.unit_price`), and revenue rolled up per
product and day and per product (`revenue_brl`), with the units valued at the list
price (`list_quantity`), so that a price change re-values exactly the days it covers.

Each product's price so far becomes its one price row, from the day it was last written
(it holds for every earlier date too, so no stored order changes value); the cells'
revenue is their units at that price, as it was.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 13:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIGGER = "bump_data_version"  # migration 0005's function
PRICE = sa.Numeric(precision=12, scale=2)


def upgrade() -> None:
    op.create_table(
        "product_prices",
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=False),
        sa.Column("applies_from", sa.Date(), nullable=False),
        sa.Column("price", PRICE, nullable=False),
        sa.Column("upload_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("price >= 0", name=op.f("ck_product_prices_price_not_negative")),
        sa.CheckConstraint("valid_from < valid_to", name=op.f("ck_product_prices_valid_range")),
        sa.CheckConstraint(
            "applies_from <= valid_from", name=op.f("ck_product_prices_applies_before")
        ),
        sa.PrimaryKeyConstraint("product_id", "valid_from", name=op.f("pk_product_prices")),
    )
    op.execute(
        """
INSERT INTO product_prices (product_id, valid_from, valid_to, applies_from, price, upload_id)
SELECT product_id, updated_at::date, 'infinity', '-infinity', price, upload_id FROM products
"""
    )
    op.execute(
        f"CREATE TRIGGER {TRIGGER} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE"
        f" ON product_prices FOR EACH STATEMENT EXECUTE FUNCTION {TRIGGER}()"
    )
    op.execute(f"ALTER TABLE product_prices ENABLE ALWAYS TRIGGER {TRIGGER}")

    op.add_column("orders", sa.Column("unit_price", PRICE, nullable=True))
    op.create_check_constraint("unit_price_not_negative", "orders", "unit_price >= 0")

    op.add_column("product_daily_sales", sa.Column("list_quantity", sa.BigInteger()))
    op.add_column("product_daily_sales", sa.Column("revenue_brl", sa.Numeric()))
    op.execute(
        """
UPDATE product_daily_sales s SET list_quantity = s.quantity, revenue_brl = s.quantity * p.price
FROM products p WHERE p.product_id = s.product_id
"""
    )
    op.add_column("product_sales", sa.Column("revenue_brl", sa.Numeric()))
    op.execute(
        """
UPDATE product_sales s SET revenue_brl = s.quantity * p.price
FROM products p WHERE p.product_id = s.product_id
"""
    )
    for table, column in (
        ("product_daily_sales", "list_quantity"),
        ("product_daily_sales", "revenue_brl"),
        ("product_sales", "revenue_brl"),
    ):
        op.alter_column(table, column, nullable=False)
    op.create_check_constraint(
        "list_units_within", "product_daily_sales", "list_quantity BETWEEN 0 AND quantity"
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("ck_product_daily_sales_list_units_within"), "product_daily_sales", type_="check"
    )
    op.drop_column("product_sales", "revenue_brl")
    op.drop_column("product_daily_sales", "revenue_brl")
    op.drop_column("product_daily_sales", "list_quantity")
    op.drop_constraint(op.f("ck_orders_unit_price_not_negative"), "orders", type_="check")
    op.drop_column("orders", "unit_price")
    op.drop_table("product_prices")
