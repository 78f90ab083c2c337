"""Running units by month: `units_through_month` (every product's units through each
month with orders) and `units_month_to_date` (through each order day, from the first of
its month), so that a period's units per product are four rows; built from the cells,
and bumping the data version like every rollup.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 08:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = {"units_through_month": "month", "units_month_to_date": "created_date"}
TRIGGER = "bump_data_version"  # migration 0005's function


def upgrade() -> None:
    for table, key in TABLES.items():
        checks = [
            sa.CheckConstraint(
                "cardinality(product_ids) = cardinality(quantities)",
                name=op.f(f"ck_{table}_arrays_aligned"),
            )
        ]
        if key == "month":
            checks.append(
                sa.CheckConstraint(
                    "extract(day FROM month) = 1", name=op.f(f"ck_{table}_first_of_month")
                )
            )
        op.create_table(
            table,
            sa.Column(key, sa.Date(), nullable=False),
            sa.Column("product_ids", sa.ARRAY(sa.Integer()), nullable=False),
            sa.Column("quantities", sa.ARRAY(sa.BigInteger()), nullable=False),
            *checks,
            sa.PrimaryKeyConstraint(key, name=op.f(f"pk_{table}")),
        )
        # Read whole and rewritten whole: compressing them costs more than it saves.
        op.execute(
            f"ALTER TABLE {table} ALTER COLUMN product_ids SET STORAGE EXTERNAL,"
            " ALTER COLUMN quantities SET STORAGE EXTERNAL"
        )
        op.execute(
            f"CREATE TRIGGER {TRIGGER} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}"
            f" FOR EACH STATEMENT EXECUTE FUNCTION {TRIGGER}()"
        )
        # Uploads write with session_replication_role = replica: it must fire then too.
        op.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {TRIGGER}")
    # Each product's units through each order day of a month, from the cells: a running
    # sum per product and month, carried over the month's order days without a cell of
    # it (a running max does that: the sums only grow within a month).
    op.execute(
        """
        INSERT INTO units_month_to_date (created_date, product_ids, quantities)
        WITH cells AS (
            SELECT product_id, created_date, date_trunc('month', created_date::timestamp)::date AS month,
                sum(quantity) OVER (
                    PARTITION BY product_id, date_trunc('month', created_date::timestamp)::date
                    ORDER BY created_date
                ) AS quantity
            FROM product_daily_sales
        ),
        days AS (
            SELECT created_date AS day, date_trunc('month', created_date::timestamp)::date AS month
            FROM daily_sales
        ),
        carried AS (
            SELECT d.day, p.product_id,
                max(c.quantity) OVER (PARTITION BY p.product_id, d.month ORDER BY d.day)
                    AS quantity
            FROM days d
            JOIN (SELECT DISTINCT month, product_id FROM cells) p ON p.month = d.month
            LEFT JOIN cells c ON c.product_id = p.product_id AND c.created_date = d.day
        )
        SELECT day, array_agg(product_id ORDER BY product_id),
            array_agg(quantity::bigint ORDER BY product_id)
        FROM carried WHERE quantity IS NOT NULL
        GROUP BY day
        """
    )
    # Each product's running total at its last cell of each month, carried over the later
    # months (running totals only grow).
    op.execute(
        """
        INSERT INTO units_through_month (month, product_ids, quantities)
        WITH months AS (
            SELECT DISTINCT date_trunc('month', created_date::timestamp)::date AS month FROM daily_sales
        ),
        last_cells AS (
            SELECT DISTINCT ON (product_id, date_trunc('month', created_date::timestamp)::date)
                product_id, date_trunc('month', created_date::timestamp)::date AS month, cum_quantity
            FROM product_daily_sales
            ORDER BY product_id, date_trunc('month', created_date::timestamp)::date, created_date DESC
        ),
        carried AS (
            SELECT m.month, p.product_id,
                max(l.cum_quantity) OVER (PARTITION BY p.product_id ORDER BY m.month)
                    AS quantity
            FROM months m
            CROSS JOIN (SELECT DISTINCT product_id FROM last_cells) p
            LEFT JOIN last_cells l ON l.product_id = p.product_id AND l.month = m.month
        )
        SELECT month, array_agg(product_id ORDER BY product_id),
            array_agg(quantity ORDER BY product_id)
        FROM carried WHERE quantity IS NOT NULL
        GROUP BY month
        """
    )


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table)
