"""Answers by data version: the `data_version` row and the statement triggers that bump
it whenever products, orders or the rollups change; running totals of units per product
and day (`product_daily_sales.cum_quantity`), so any period is a difference of two cells.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 13:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRACKED = (
    "products",
    "orders",
    "daily_sales",
    "product_daily_sales",
    "product_sales",
    "growth_leaders",
)
TRIGGER = "bump_data_version"
CELLS = "product_daily_sales"


def upgrade() -> None:
    op.create_table(
        "growth_leaders",
        sa.Column("basis", sa.String(length=16), nullable=False),
        sa.Column("created_date", sa.Date(), nullable=False),
        sa.Column("rank", sa.SmallInteger(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("previous_date", sa.Date(), nullable=False),
        sa.Column("previous_quantity", sa.BigInteger(), nullable=False),
        sa.Column("growth", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "basis IN ('calendar', 'previous_sale')", name=op.f("ck_growth_leaders_basis_known")
        ),
        sa.CheckConstraint("rank >= 1", name=op.f("ck_growth_leaders_rank_positive")),
        sa.PrimaryKeyConstraint("basis", "created_date", "rank", name=op.f("pk_growth_leaders")),
    )
    op.create_index(
        "ix_growth_leaders_order",
        "growth_leaders",
        ["basis", sa.text("growth DESC"), "created_date", "product_id"],
    )
    op.execute(
        """
        INSERT INTO growth_leaders
        SELECT basis, created_date, rank, product_id, quantity, previous_date,
            previous_quantity, growth
        FROM (
            SELECT g.*, row_number() OVER (
                PARTITION BY basis, created_date ORDER BY growth DESC, product_id) AS rank
            FROM (
                SELECT 'calendar' AS basis, created_date, product_id, quantity,
                    created_date - 1 AS previous_date, prev_quantity AS previous_quantity,
                    calendar_growth AS growth
                FROM product_daily_sales
                UNION ALL
                SELECT 'previous_sale', created_date, product_id, quantity, prev_sale_date,
                    prev_sale_quantity, sale_growth
                FROM product_daily_sales WHERE sale_growth IS NOT NULL
            ) g
        ) ranked
        -- app.analytics.rollups.LEADERS_PER_DAY
        WHERE rank <= 25
        """
    )
    op.create_table(
        "data_version",
        sa.Column("id", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column(
            "changed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("id", name=op.f("ck_data_version_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_version")),
    )
    # Not owned by a column: TRUNCATE … RESTART IDENTITY leaves it alone, so a version
    # is never handed out twice.
    op.execute("CREATE SEQUENCE data_version_seq")
    op.execute(
        """
        CREATE FUNCTION bump_data_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO data_version (id, version, changed_at)
            VALUES (true, nextval('data_version_seq'), clock_timestamp())
            ON CONFLICT (id) DO UPDATE
                SET version = EXCLUDED.version, changed_at = EXCLUDED.changed_at;
            RETURN NULL;
        END
        $$
        """
    )
    for table in TRACKED:
        op.execute(
            f"CREATE TRIGGER {TRIGGER} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version()"
        )
        # Uploads insert orders with session_replication_role = replica (the foreign key
        # checked by set): the bump must fire then too.
        op.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {TRIGGER}")
    op.add_column(CELLS, sa.Column("cum_quantity", sa.BigInteger(), nullable=True))
    op.execute(
        """
        UPDATE product_daily_sales t SET cum_quantity = x.cum
        FROM (
            SELECT product_id, created_date,
                sum(quantity) OVER (PARTITION BY product_id ORDER BY created_date) AS cum
            FROM product_daily_sales
        ) x
        WHERE t.product_id = x.product_id AND t.created_date = x.created_date
        """
    )
    op.alter_column(CELLS, "cum_quantity", nullable=False)
    op.create_check_constraint(
        op.f("ck_product_daily_sales_running_total_covers_day"), CELLS, "cum_quantity >= quantity"
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("ck_product_daily_sales_running_total_covers_day"), CELLS, type_="check"
    )
    op.drop_column(CELLS, "cum_quantity")
    for table in TRACKED:
        op.execute(f"DROP TRIGGER {TRIGGER} ON {table}")
    op.execute("DROP FUNCTION bump_data_version()")
    op.execute("DROP SEQUENCE data_version_seq")
    op.drop_table("data_version")
    op.drop_index("ix_growth_leaders_order", table_name="growth_leaders")
    op.drop_table("growth_leaders")
